/// A request's W3C Trace Context (https://www.w3.org/TR/trace-context/): the trace it belongs to
/// and the gateway's own span in it. An incoming valid `traceparent` continues its trace (and
/// its `tracestate` is passed on unchanged); otherwise the gateway starts a new trace. Upstreams
/// get `traceparent` naming the gateway's span as their parent; the trace id appears in the
/// access log and in problem documents.
///
/// The ids are kept as numbers and written as hex only when something reads them (a proxied
/// request, a log line, a problem document), so a request that needs none costs three random
/// numbers.
public struct TraceContext: Sendable, Equatable {
    let traceHigh: UInt64
    let traceLow: UInt64
    let span: UInt64
    /// The caller's span, when a valid `traceparent` came in.
    public let parentSpanID: String?
    /// The trace flags (`01`: sampled), two hex digits, taken over from the caller.
    public let flags: String
    /// The caller's `tracestate`, passed on unchanged (only with a valid `traceparent`).
    public let traceState: String?

    /// 32 lowercase hex digits.
    public var traceID: String { Self.hex(self.traceHigh, self.traceLow) }
    /// The gateway's span for this request: 16 lowercase hex digits.
    public var spanID: String { Self.hex(self.span) }
    /// The `traceparent` value for the next hop: this trace, the gateway's span as parent.
    public var traceparent: String { "00-\(self.traceID)-\(self.spanID)-\(self.flags)" }

    /// Whether the trace is recorded (the `sampled` bit of the flags).
    var isSampled: Bool {
        guard let flags = UInt8(self.flags, radix: 16) else { return false }
        return flags & 1 == 1
    }

    /// The `traceparent` the caller sent (this trace, the caller's span), when it sent one.
    var callerTraceparent: String? {
        self.parentSpanID.map { "00-\(self.traceID)-\($0)-\(self.flags)" }
    }

    /// The context of a span a tracer made: `traceparent` names the span itself (as the tracer's
    /// propagator writes it for the next hop); `nil` when it is not a valid one.
    static func ownSpan(traceparent: String, parentSpanID: String?, traceState: String?) -> TraceContext? {
        guard let parsed = Self.parse(traceparent), let span = UInt64(parsed.parentID, radix: 16) else { return nil }
        return TraceContext(
            traceHigh: UInt64(parsed.traceID.prefix(16), radix: 16) ?? 0,
            traceLow: UInt64(parsed.traceID.suffix(16), radix: 16) ?? 0,
            span: span,
            parentSpanID: parentSpanID,
            flags: parsed.flags,
            traceState: traceState
        )
    }

    /// Continues the trace of a valid `traceparent` (read by the rules for version 00, and for
    /// later versions by their first fields), or starts a new one.
    static func make(traceparent: String?, tracestate: @autoclosure () -> String?) -> TraceContext {
        let span = RequestID.random64()
        if let traceparent, let parsed = Self.parse(traceparent) {
            var state: String?
            if let tracestate = tracestate(), !tracestate.isEmpty, tracestate.utf8.count <= 512,
                tracestate.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F })
            {
                state = tracestate
            }
            return TraceContext(
                traceHigh: UInt64(parsed.traceID.prefix(16), radix: 16) ?? 0,
                traceLow: UInt64(parsed.traceID.suffix(16), radix: 16) ?? 0,
                span: span,
                parentSpanID: parsed.parentID,
                flags: parsed.flags,
                traceState: state
            )
        }
        return TraceContext(
            traceHigh: RequestID.random64(),
            traceLow: RequestID.random64() | 1,
            span: span | 1,
            parentSpanID: nil,
            flags: "00",
            traceState: nil
        )
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

    /// The numbers as zero-padded lowercase hex, written straight into the string's storage.
    private static func hex(_ values: UInt64...) -> String {
        let digits: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: 16 * values.count) { buffer in
            digits.withUTF8Buffer { alphabet in
                for (part, value) in values.enumerated() {
                    for index in 0..<16 {
                        buffer[part * 16 + index] = alphabet[Int((value >> UInt64(60 - 4 * index)) & 0xF)]
                    }
                }
            }
            return 16 * values.count
        }
    }
}
