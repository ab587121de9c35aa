/// Parses an HTTP/1.1 (or 1.0) response head in place, strictly by RFC 9112: the status line,
/// then the fields with the rules of ``HTTP1RequestHeadParser`` (its field-line reader).
///
/// Refused, each with its ``HTTP1ParseError``: a status line other than `HTTP/1.1` or `HTTP/1.0`,
/// a space, three digits from 100 to 599 and an optional reason phrase (visible characters,
/// spaces, tabs, obs-text); empty lines before it; a bare CR or LF; obsolete line folding;
/// whitespace before a field's colon; a name that is not a token; control characters in a value;
/// more than one `Content-Length` (even with equal values) or one that is not 1 to 18 digits;
/// `Content-Length` with `Transfer-Encoding`; `Transfer-Encoding` in HTTP/1.0 or other than one
/// `chunked` (or with a tab in or after it, or an empty list element). RFC 9112 6.3 lets a recipient read some of these (a response whose final coding is
/// not chunked is read until the close, equal `Content-Length` values may be merged), but a
/// proxy that reads a response one way while a cache or client behind it reads it another is
/// open to response splitting, so the gateway refuses them and answers 502.
///
/// The status line's space before an empty reason phrase may be missing (`HTTP/1.1 200\r\n`):
/// servers send that, llhttp reads it, and it says nothing about framing.
///
/// Like the request parser it keeps no state between calls: give it all bytes received so far
/// for the head, and it answers ``Result/incomplete`` until the head's empty line has arrived.
public enum HTTP1ResponseHeadParser {
    public enum Result: Sendable, Hashable {
        case incomplete
        case complete(HTTP1ResponseHead)
        case refused(HTTP1ParseError)
    }

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")
    private static let space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t")
    /// `HTTP/1.` then the minor version, a space and three digits.
    private static let statusLineStart = Array("HTTP/1.".utf8)

    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Result {
        let count = bytes.count
        // status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
        for (index, expected) in Self.statusLineStart.enumerated() {
            if index == count { return .incomplete }
            guard bytes[index] == expected else { return .refused(Self.statusLineError(bytes, index)) }
        }
        var index = Self.statusLineStart.count
        if index == count { return .incomplete }
        let minor = bytes[index]
        guard minor == UInt8(ascii: "0") || minor == UInt8(ascii: "1") else {
            return .refused(HTTP1ParseError(.invalidStatusLine))
        }
        index += 1
        if index == count { return .incomplete }
        guard bytes[index] == Self.space else { return .refused(Self.statusLineError(bytes, index)) }
        index += 1
        var status = 0
        for _ in 0..<3 {
            if index == count { return .incomplete }
            guard HTTP1RequestHeadParser.isDigit(bytes[index]) else {
                return .refused(Self.statusLineError(bytes, index))
            }
            status = status * 10 + Int(bytes[index] - UInt8(ascii: "0"))
            index += 1
        }
        guard (100...599).contains(status) else { return .refused(HTTP1ParseError(.invalidStatusLine)) }
        if index == count { return .incomplete }
        var reasonStart = index
        if bytes[index] == Self.space {
            index += 1
            reasonStart = index
            // reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
            while index < count {
                let byte = bytes[index]
                guard byte >= Self.space && byte != 0x7F || byte == Self.tab else { break }
                index += 1
            }
            if index == count { return .incomplete }
        }
        let reason = reasonStart..<index
        guard bytes[index] == Self.cr else { return .refused(Self.statusLineError(bytes, index)) }
        if index + 1 == count { return .incomplete }
        guard bytes[index + 1] == Self.lf else { return .refused(HTTP1ParseError(.bareCR)) }
        index += 2

        var head = HTTP1ResponseHead(
            status: status,
            reason: reason,
            minorVersion: minor == UInt8(ascii: "1") ? 1 : 0,
            fields: [],
            framing: .untilClose,
            connection: [],
            length: 0
        )
        head.fields.reserveCapacity(16)
        var contentLength: Int?
        var codings = HTTP1RequestHeadParser.TransferCodings()

        // *( field-line CRLF ) CRLF
        fields: while true {
            let field: HTTP1ResponseHead.Field
            switch HTTP1RequestHeadParser.fieldLine(bytes, at: index) {
            case .incomplete: return .incomplete
            case .refused(let error): return .refused(error)
            case .sectionEnd(let next):
                index = next
                break fields
            case .field(let line, let next):
                field = line
                index = next
            }
            let name = field.name
            switch name.count {
            case 10 where HTTP1RequestHeadParser.nameEquals(bytes, name, "connection"):
                head.connection.formUnion(HTTP1RequestHeadParser.connectionOptions(bytes, field.value))
            case 14 where HTTP1RequestHeadParser.nameEquals(bytes, name, "content-length"):
                guard contentLength == nil else { return .refused(HTTP1ParseError(.multipleContentLengths)) }
                guard let length = HTTP1RequestHeadParser.contentLength(bytes, field, lineEnd: index - 2) else {
                    return .refused(HTTP1ParseError(.invalidContentLength))
                }
                contentLength = length
            case 17 where HTTP1RequestHeadParser.nameEquals(bytes, name, "transfer-encoding"):
                codings.add(bytes, field, lineEnd: index - 2)
            default:
                break
            }
            head.fields.append(field)
        }

        if codings.fields > 0 {
            // RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
            if head.minorVersion == 0 { return .refused(HTTP1ParseError(.transferEncodingInHTTP10)) }
            if codings.isIrregular { return .refused(HTTP1ParseError(.invalidTransferEncoding)) }
            guard codings.lastIsChunked, codings.chunked == 1 else {
                return .refused(HTTP1ParseError(.chunkedNotFinal))
            }
            if contentLength != nil { return .refused(HTTP1ParseError(.contentLengthWithTransferEncoding)) }
            guard codings.others == 0 else { return .refused(HTTP1ParseError(.unsupportedTransferCoding)) }
            head.framing = .chunked
        } else if let contentLength {
            head.framing = .contentLength(contentLength)
        }
        head.length = index
        return .complete(head)
    }

    /// A byte that breaks the status line: a bare CR or LF, or anything else.
    private static func statusLineError(_ bytes: UnsafeRawBufferPointer, _ index: Int) -> HTTP1ParseError {
        HTTP1RequestHeadParser.lineError(bytes, index, .invalidStatusLine)
    }
}
