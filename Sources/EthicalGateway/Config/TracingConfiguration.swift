/// Span export over OTLP/HTTP (the top-level `"tracing"` object; absent: no spans are made, and
/// the gateway only passes W3C trace context on).
///
/// With it, every request gets a server span and every upstream attempt of `http-proxy` a
/// client span under it, exported in batches by swift-otel to an OpenTelemetry collector (or
/// anything that accepts OTLP/HTTP: Jaeger, Tempo, Honeycomb...). The standard `OTEL_*`
/// environment variables (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_TRACES_SAMPLER_ARG`, ...)
/// override these settings, as the OpenTelemetry specification says they do.
///
/// ```json
/// "tracing": { "endpoint": "http://127.0.0.1:4318/v1/traces", "sampleRatio": 0.1 }
/// ```
public struct TracingConfiguration: Sendable, Decodable, Equatable {
    /// The collector's OTLP/HTTP traces URL, used as written (`http://host:4318/v1/traces`);
    /// `https` URLs are verified against the system's trust store.
    public var endpoint: String
    /// `"http/protobuf"`, the only encoding offered: swift-otel 1.6's `http/json` writes trace
    /// and span ids in base64 where OTLP/JSON requires hex, and collectors reject or misread them.
    public var `protocol`: String = "http/protobuf"
    /// The `service.name` resource attribute of every span (default `"ethical-gateway"`).
    public var serviceName: String = "ethical-gateway"
    /// The share of new traces recorded, 0 to 1 (default 1). A request that continues a trace
    /// follows its caller's sampled flag instead (parent-based sampling).
    public var sampleRatio: Double = 1
    /// Extra HTTP header fields sent with every export (an API key of a hosted collector).
    public var headers: [String: String] = [:]
    /// How long spans wait in the batch before they are sent, in seconds (default 5).
    public var exportDelaySeconds: Double = 5
    /// How long one export may take, in seconds (default 10).
    public var exportTimeoutSeconds: Double = 10

    enum CodingKeys: String, CodingKey {
        case endpoint, `protocol`, serviceName, sampleRatio, headers, exportDelaySeconds, exportTimeoutSeconds
    }

    public init(endpoint: String) {
        self.endpoint = endpoint
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let path = container.codingPath
        self.endpoint = try container.decode(String.self, forKey: .endpoint)
        let lowered = self.endpoint.lowercased()
        guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://"), self.endpoint.utf8.count > 8,
            !self.endpoint.contains(where: \.isWhitespace)
        else {
            throw decoder.invalidValue(
                at: path + [CodingKeys.endpoint],
                "expected an http:// or https:// URL of an OTLP/HTTP traces endpoint, found \"\(self.endpoint)\""
            )
        }
        if let value = try container.decodeIfPresent(String.self, forKey: .protocol) {
            guard value == "http/protobuf" else {
                throw decoder.invalidValue(
                    at: path + [CodingKeys.protocol],
                    value == "http/json"
                        ? "\"http/json\" is not offered: the exporter would write ids in base64 where OTLP/JSON requires hex; use \"http/protobuf\""
                        : "expected \"http/protobuf\", found \"\(value)\""
                )
            }
            self.protocol = value
        }
        if let name = try container.decodeIfPresent(String.self, forKey: .serviceName) {
            guard !name.isEmpty else {
                throw decoder.invalidValue(at: path + [CodingKeys.serviceName], "expected a non-empty name")
            }
            self.serviceName = name
        }
        if let ratio = try container.decodeIfPresent(Double.self, forKey: .sampleRatio) {
            guard (0...1).contains(ratio) else {
                throw decoder.invalidValue(
                    at: path + [CodingKeys.sampleRatio],
                    "expected a number from 0 to 1, found \(ratio)"
                )
            }
            self.sampleRatio = ratio
        }
        self.headers = try container.decodeIfPresent([String: String].self, forKey: .headers) ?? [:]
        for (name, value) in self.headers where !FieldBytes.isToken(name) || !FieldBytes.isValue(value) {
            throw decoder.invalidValue(
                at: path + [CodingKeys.headers],
                "\"\(name)\" is not a valid header field name with a single-line value"
            )
        }
        for key in [CodingKeys.exportDelaySeconds, .exportTimeoutSeconds] {
            guard let seconds = try container.decodeIfPresent(Double.self, forKey: key) else { continue }
            guard seconds > 0, seconds <= 3600 else {
                throw decoder.invalidValue(
                    at: path + [key],
                    "expected seconds above 0 and at most 3600, found \(seconds)"
                )
            }
            if key == .exportDelaySeconds {
                self.exportDelaySeconds = seconds
            } else {
                self.exportTimeoutSeconds = seconds
            }
        }
    }
}
