public import Logging

/// The gateway's text log (`"logFormat": "text"`, the default): swift-log's
/// `StreamLogHandler` on standard error, with control characters in the message and in
/// metadata values written as escapes (`\n`, `\r`, `\t`, `\u{1B}`).
///
/// Metadata often carries what a client sent: a token's `iss` or `kid` in a refusal's reason, a
/// path, a header. Written raw, a newline in it starts a line of the attacker's choosing that
/// reads like one of the gateway's own (log forging, CWE-117). The JSON format escapes by
/// construction.
public struct TextLogHandler: LogHandler {
    private var inner: StreamLogHandler

    public init(label: String) {
        self.inner = StreamLogHandler.standardError(label: label)
    }

    public var logLevel: Logger.Level {
        get { self.inner.logLevel }
        set { self.inner.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { self.inner.metadata }
        set { self.inner.metadata = newValue.mapValues(Self.escaped) }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { self.inner.metadataProvider }
        set { self.inner.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.inner[metadataKey: key] }
        set { self.inner[metadataKey: key] = newValue.map(Self.escaped) }
    }

    public func log(event: LogEvent) {
        var event = event
        let message = event.message.description
        if Self.needsEscaping(message) { event.message = "\(Self.escaped(message))" }
        event.metadata = event.metadata?.mapValues(Self.escaped)
        if let provider = self.inner.metadataProvider {
            // Provided metadata is merged by the inner handler; escape it here instead.
            var provided = provider.get().mapValues(Self.escaped)
            if let own = event.metadata { provided.merge(own) { $1 } }
            event.metadata = provided
            var inner = self.inner
            inner.metadataProvider = nil
            inner.log(event: event)
            return
        }
        self.inner.log(event: event)
    }

    static func escaped(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): return Self.needsEscaping(text) ? .string(Self.escaped(text)) : value
        case .stringConvertible(let convertible):
            let text = convertible.description
            return Self.needsEscaping(text) ? .string(Self.escaped(text)) : value
        case .array(let values): return .array(values.map(Self.escaped))
        case .dictionary(let values): return .dictionary(values.mapValues(Self.escaped))
        }
    }

    static func needsEscaping(_ text: String) -> Bool {
        text.utf8.contains { $0 < 0x20 || $0 == 0x7F }
    }

    static func escaped(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
