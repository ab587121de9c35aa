public import NIOCore
public import NIOHTTP1

/// An RFC 9457 problem document: what clients get for every error the gateway itself answers.
///
/// ```json
/// {"type":"about:blank","title":"Not Found","status":404,
///  "detail":"no route matches GET example.com/nope","instance":"/nope","requestId":"7f3a..."}
/// ```
public struct ProblemDetails: Sendable {
    public var status: HTTPResponseStatus
    public var detail: String
    public var instance: String?
    public var requestID: String
    /// The W3C trace id of the request, when known.
    public var traceID: String? = nil

    public init(
        status: HTTPResponseStatus,
        detail: String,
        instance: String?,
        requestID: String,
        traceID: String? = nil
    ) {
        self.status = status
        self.detail = detail
        self.instance = instance
        self.requestID = requestID
        self.traceID = traceID
    }

    /// The document as JSON.
    public func jsonBody(allocator: ByteBufferAllocator) -> ByteBuffer {
        var json = "{\"type\":\"about:blank\",\"title\":"
        appendJSONString(self.status.reasonPhrase, to: &json)
        json += ",\"status\":\(self.status.code),\"detail\":"
        appendJSONString(self.detail, to: &json)
        if let instance = self.instance {
            json += ",\"instance\":"
            appendJSONString(instance, to: &json)
        }
        json += ",\"requestId\":"
        appendJSONString(self.requestID, to: &json)
        if let traceID = self.traceID {
            json += ",\"traceId\":"
            appendJSONString(traceID, to: &json)
        }
        json += "}"
        return allocator.buffer(string: json)
    }

    /// The response head: `application/problem+json`, the length, no caching.
    public func responseHead(version: HTTPVersion, bodyLength: Int) -> HTTPResponseHead {
        HTTPResponseHead(
            version: version,
            status: self.status,
            headers: [
                "content-type": "application/problem+json",
                "content-length": String(bodyLength),
                "cache-control": "no-store",
            ]
        )
    }
}

/// Appends `string` as a JSON string literal.
func appendJSONString(_ string: String, to output: inout String) {
    output.append("\"")
    var string = string
    string.withUTF8 { bytes in
        // Runs of bytes that need no escaping are appended whole (most strings are one run).
        var runStart = 0
        for index in bytes.indices {
            let byte = bytes[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            if runStart < index {
                output.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[runStart..<index]), as: UTF8.self))
            }
            switch byte {
            case UInt8(ascii: "\""): output.append("\\\"")
            case UInt8(ascii: "\\"): output.append("\\\\")
            case UInt8(ascii: "\n"): output.append("\\n")
            case UInt8(ascii: "\r"): output.append("\\r")
            case UInt8(ascii: "\t"): output.append("\\t")
            default:
                let digits = Array("0123456789abcdef".utf8)
                output.append("\\u00")
                output.unicodeScalars.append(Unicode.Scalar(digits[Int(byte >> 4)]))
                output.unicodeScalars.append(Unicode.Scalar(digits[Int(byte & 0xF)]))
            }
            runStart = index + 1
        }
        if runStart < bytes.count {
            output.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[runStart...]), as: UTF8.self))
        }
    }
    output.append("\"")
}
