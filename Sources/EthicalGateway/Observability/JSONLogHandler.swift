import Foundation
public import Logging

/// Writes the gateway's own log as one JSON object per line on standard error (`"logFormat":
/// "json"`): `time` (RFC 3339), `level`, `message`, `source`, and every metadata entry as a
/// string member (a metadata key that collides with those four is prefixed with `meta.`).
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = self.metadata
        if let provided = self.metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        var json =
            "{\"time\":\"\(AccessLogRecord.rfc3339(AccessLogRecord.now()))\",\"level\":\"\(event.level.rawValue)\""
        json += ",\"message\":"
        appendJSONString(event.message.description, to: &json)
        json += ",\"source\":"
        appendJSONString(event.source.isEmpty ? self.label : event.source, to: &json)
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            json += ","
            appendJSONString(["time", "level", "message", "source"].contains(key) ? "meta.\(key)" : key, to: &json)
            json += ":"
            appendJSONString("\(value)", to: &json)
        }
        json += "}\n"
        FileHandle.standardError.write(Data(json.utf8))
    }
}
