/// Why the parser refused a request head (or ``HTTP1RequestDecoder`` a request's body framing,
/// or ``HTTP1ResponseDecoder`` a response): what was wrong, and the status to answer with.
///
/// Every refusal ends the connection: after a head or a body the parser cannot read, nothing
/// says where the next message starts.
public struct HTTP1ParseError: Error, Sendable, Hashable, CustomStringConvertible {
    enum Reason: Hashable, Sendable {
        case invalidStatusLine
        case headTooLarge
        case unexpectedResponse
        case dataAfterClose
        case framingFieldInTrailers
        case invalidTransferEncoding
        case invalidMethod
        case invalidTarget
        case invalidVersion
        case unsupportedVersion
        case bareCR
        case bareLF
        case obsFold
        case invalidFieldName
        case whitespaceBeforeColon
        case invalidFieldValue
        case multipleContentLengths
        case invalidContentLength
        case contentLengthWithTransferEncoding
        case transferEncodingInHTTP10
        case unsupportedTransferCoding
        case chunkedNotFinal
        case multipleHosts
        case missingHost
        case invalidChunkSize
        case missingChunkDataEnd
        case incompleteMessage
    }

    let reason: Reason
    /// Whether a response was refused (the descriptions name the message).
    var inResponse = false

    init(_ reason: Reason) {
        self.reason = reason
    }

    /// This error, said of a response.
    var ofResponse: HTTP1ParseError {
        var error = self
        error.inResponse = true
        return error
    }

    /// The status code the gateway answers with (400, or 501 for a transfer coding it does not
    /// implement, 505 for an HTTP version other than 1.0 and 1.1).
    public var status: Int {
        switch self.reason {
        case .unsupportedTransferCoding: 501
        case .unsupportedVersion: 505
        default: 400
        }
    }

    public var description: String {
        let message = self.inResponse ? "response" : "request"
        return switch self.reason {
        case .invalidStatusLine:
            "a status line must be HTTP/1.1 or HTTP/1.0, a space, a status code from 100 to 599 and a reason"
                + " phrase of visible characters, spaces and tabs (RFC 9112 4)"
        case .headTooLarge: "the \(message) head, or its trailer section, is larger than the limit"
        case .unexpectedResponse: "bytes arrived while no request was waiting for a response"
        case .dataAfterClose: "bytes arrived after a response that ends the connection"
        case .invalidTransferEncoding:
            "Transfer-Encoding must be codings separated by commas and spaces: no empty ones, no tabs among or after them"
        case .framingFieldInTrailers:
            "a trailer section must not carry Content-Length, Transfer-Encoding or Connection (RFC 9110 6.5.1)"
        case .invalidMethod: "the method must be a token such as GET"
        case .invalidTarget: "the request target contains a character outside visible ASCII"
        case .invalidVersion: "the request line must end with HTTP/1.1 or HTTP/1.0"
        case .unsupportedVersion: "only HTTP/1.0 and HTTP/1.1 are served on this connection"
        case .bareCR: "a carriage return not followed by a line feed (RFC 9112 2.2)"
        case .bareLF: "a line ends with a line feed alone; lines end with CRLF (RFC 9112 2.2)"
        case .obsFold: "a header line starts with whitespace (obsolete line folding, RFC 9112 5.2)"
        case .invalidFieldName: "a header field name contains a character that is not allowed in a token"
        case .whitespaceBeforeColon: "whitespace between a header field name and the colon (RFC 9112 5.1)"
        case .invalidFieldValue: "a header field value contains a control character"
        case .multipleContentLengths: "the \(message) carries more than one Content-Length header field"
        case .invalidContentLength: "Content-Length must be a decimal number of bytes"
        case .contentLengthWithTransferEncoding:
            "a \(message) must not carry both Transfer-Encoding and Content-Length (RFC 9112 6.1)"
        case .transferEncodingInHTTP10: "Transfer-Encoding is not defined for HTTP/1.0 \(message)s (RFC 9112 6.1)"
        case .unsupportedTransferCoding: "the only transfer coding the gateway implements is chunked (RFC 9112 6.1)"
        case .multipleHosts: "the request carries more than one Host header field"
        case .missingHost: "an HTTP/1.1 request must carry a Host header"
        case .chunkedNotFinal:
            "chunked must be the final transfer coding, applied once (RFC 9112 6.3)"
        case .invalidChunkSize: "a chunk size must be hexadecimal digits, optionally with extensions, then CRLF"
        case .missingChunkDataEnd: "a chunk's data must be followed by CRLF (RFC 9112 7.1)"
        case .incompleteMessage:
            self.inResponse
                ? "the upstream closed the connection in the middle of a response"
                : "the client closed its sending side in the middle of a request"
        }
    }
}
