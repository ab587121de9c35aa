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
    var bytes: [UInt8] = []
    bytes.reserveCapacity(string.utf8.count + 2)
    appendJSONString(string, to: &bytes)
    output.append(String(decoding: bytes, as: UTF8.self))
}

/// `string` as a JSON string literal in UTF-8: quoted, with `"`, `\\` and control characters
/// escaped (`\\n`, `\\r`, `\\t`, else `\\u00XX`); every other byte is copied as is.
func appendJSONString(_ string: String, to json: inout [UInt8]) {
    json.append(UInt8(ascii: "\""))
    for byte in string.utf8 {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"):
            json.append(UInt8(ascii: "\\"))
            json.append(byte)
        case UInt8(ascii: "\n"): json.append(contentsOf: "\\n".utf8)
        case UInt8(ascii: "\r"): json.append(contentsOf: "\\r".utf8)
        case UInt8(ascii: "\t"): json.append(contentsOf: "\\t".utf8)
        case 0..<0x20:
            let digits: StaticString = "0123456789abcdef"
            json.append(contentsOf: "\\u00".utf8)
            digits.withUTF8Buffer { alphabet in
                json.append(alphabet[Int(byte >> 4)])
                json.append(alphabet[Int(byte & 0xF)])
            }
        default:
            json.append(byte)
        }
    }
    json.append(UInt8(ascii: "\""))
}
