/// A request's W3C Trace Context (https://www.w3.org/TR/trace-context/): the trace it belongs to
/// and the gateway's own span in it. An incoming valid `traceparent` continues its trace (and
/// its `tracestate` is passed on unchanged); otherwise the gateway starts a new trace. Upstreams
/// get `traceparent` naming the gateway's span as their parent; the trace id appears in the
/// access log and in problem documents.
public struct TraceContext: Sendable, Equatable {
    /// 32 lowercase hex digits.
    public let traceID: String
    /// The gateway's span for this request: 16 lowercase hex digits.
    public let spanID: String
    /// The caller's span, when a valid `traceparent` came in.
    public let parentSpanID: String?
    /// The trace flags (`01`: sampled), two hex digits, taken over from the caller.
    public let flags: String
    /// The caller's `tracestate`, passed on unchanged (only with a valid `traceparent`).
    public let traceState: String?

    /// The `traceparent` value for the next hop: this trace, the gateway's span as parent.
    public var traceparent: String { "00-\(self.traceID)-\(self.spanID)-\(self.flags)" }

    /// Continues the trace of a valid `traceparent` (any version, read as version 00 demands:
    /// RFC's rules for future versions), or starts a new one.
    static func make(traceparent: String?, tracestate: String?) -> TraceContext {
        let spanID = Self.hex(RequestID.random64(), digits: 16)
        if let traceparent, let parsed = Self.parse(traceparent) {
            var state: String?
            if let tracestate, !tracestate.isEmpty, tracestate.utf8.count <= 512,
                tracestate.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F })
            {
                state = tracestate
            }
            return TraceContext(
                traceID: parsed.traceID,
                spanID: spanID,
                parentSpanID: parsed.parentID,
                flags: parsed.flags,
                traceState: state
            )
        }
        let traceID = Self.hex(RequestID.random64(), digits: 16) + Self.hex(RequestID.random64(), digits: 16)
        return TraceContext(traceID: traceID, spanID: spanID, parentSpanID: nil, flags: "00", traceState: nil)
    }

    /// The fields of a valid `traceparent`, or `nil`.
    static func parse(_ value: String) -> (traceID: String, parentID: String, flags: String)? {
        let bytes = Array(value.utf8)
        guard bytes.count >= 55, bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"),
            bytes[52] == UInt8(ascii: "-")
        else { return nil }
        let version = bytes[0..<2]
        guard Self.isHex(version), version != [UInt8(ascii: "f"), UInt8(ascii: "f")] else { return nil }
        if version == [UInt8(ascii: "0"), UInt8(ascii: "0")] {
            guard bytes.count == 55 else { return nil }
        } else if bytes.count > 55 && bytes[55] != UInt8(ascii: "-") {
            return nil
        }
        let traceID = bytes[3..<35]
        let parentID = bytes[36..<52]
        let flags = bytes[53..<55]
        guard Self.isHex(traceID), Self.isHex(parentID), Self.isHex(flags),
            traceID.contains(where: { $0 != UInt8(ascii: "0") }), parentID.contains(where: { $0 != UInt8(ascii: "0") })
        else { return nil }
        return (
            String(decoding: traceID, as: UTF8.self), String(decoding: parentID, as: UTF8.self),
            String(decoding: flags, as: UTF8.self)
        )
    }

    private static func isHex(_ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.allSatisfy {
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
        }
    }

    private static func hex(_ value: UInt64, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
