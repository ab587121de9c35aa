/// The whole gateway configuration: one JSON file (`config/gateway.json` is the default).
///
/// ```json
/// {
///   "listeners": [{ "name": "https", "address": "127.0.0.1", "port": 8443, "tls": {} }],
///   "routes": [{ "match": { "pathPrefix": "/" }, "backend": "site" }],
///   "backends": { "site": { "plugin": "static", "config": { "root": "www" } } }
/// }
/// ```
///
/// Decoding is strict: unknown keys, wrong types and dangling references are errors, and every
/// error is reported with its JSON path. Relative file paths resolve against the folder of the
/// configuration file, not the working directory.
public struct GatewayConfiguration: Sendable {
    /// Folder for state the gateway creates itself (the development certificate).
    /// Default `"state"`, relative to the configuration file's folder.
    public var stateDirectory: String
    /// Seconds that in-flight requests get to finish after SIGTERM before connections are
    /// closed. Default 10.
    public var shutdownGracePeriodSeconds: Double
    /// Minimum log level: `trace`, `debug`, `info`, `notice`, `warning`, `error`, `critical`.
    /// Default `info`; the `ETHICAL_GATEWAY_LOG_LEVEL` environment variable overrides it.
    public var logLevel: LogLevelSetting?
    /// Limits that protect the gateway from bad or slow clients. See ``RequestLimits``.
    public var limits: RequestLimits
    /// The sockets the gateway accepts connections on. At least one.
    public var listeners: [ListenerConfiguration]
    /// The routing table: which backend answers which request. The most specific match wins.
    public var routes: [RouteConfiguration]
    /// Backends by name; each names its plugin and that plugin's configuration.
    public var backends: [String: PluginDeclaration]
    /// Filters by name; routes list the filters they run, in order.
    public var filters: [String: PluginDeclaration]
    /// Token issuers by name; a route's `auth` policy names the ones it accepts. Default `{}`.
    public var issuers: [String: IssuerConfiguration] = [:]
    /// How the gateway's own log lines look (`"logFormat"`): `text` (default) or `json`.
    public var logFormat: LogFormatSetting = .text
    /// The access log (`"accessLog"`); `nil` writes none.
    public var accessLog: AccessLogConfiguration?
    /// Span export over OTLP (`"tracing"`); `nil` makes no spans.
    public var tracing: TracingConfiguration?
    /// The admin API (`"admin"`); `nil` runs none.
    public var admin: AdminConfiguration?
    /// Reload when the configuration file changes (`"watchConfig"`, default `false`); SIGHUP
    /// and the admin API reload in any case.
    public var watchConfig: Bool = false

    /// Names of backends and filters that were declared but failed to decode; references to
    /// them are not reported a second time as dangling.
    var brokenDeclarations: Set<String> = []
    /// Names of issuers that were declared but failed to decode.
    var brokenIssuers: Set<String> = []

    public init(
        stateDirectory: String = "state",
        shutdownGracePeriodSeconds: Double = 10,
        logLevel: LogLevelSetting? = nil,
        limits: RequestLimits = RequestLimits(),
        listeners: [ListenerConfiguration],
        routes: [RouteConfiguration],
        backends: [String: PluginDeclaration],
        filters: [String: PluginDeclaration] = [:]
    ) {
        self.stateDirectory = stateDirectory
        self.shutdownGracePeriodSeconds = shutdownGracePeriodSeconds
        self.logLevel = logLevel
        self.limits = limits
        self.listeners = listeners
        self.routes = routes
        self.backends = backends
        self.filters = filters
    }
}

extension GatewayConfiguration: Decodable {
    enum CodingKeys: String, CodingKey {
        case schema = "$schema"
        case stateDirectory, shutdownGracePeriodSeconds, logLevel, limits, listeners, routes, backends, filters
        case issuers, admin, watchConfig, accessLog, logFormat, tracing
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        _ = try container.decodeIfPresent(String.self, forKey: .schema)
        self.stateDirectory = try container.decodeIfPresent(String.self, forKey: .stateDirectory) ?? "state"
        self.shutdownGracePeriodSeconds =
            try container.decodeIfPresent(Double.self, forKey: .shutdownGracePeriodSeconds) ?? 10
        if self.shutdownGracePeriodSeconds < 0 {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: container.codingPath + [CodingKeys.shutdownGracePeriodSeconds],
                    debugDescription: "expected a number of seconds >= 0"
                )
            )
        }
        self.logLevel = try container.decodeIfPresent(Lenient<LogLevelSetting>.self, forKey: .logLevel)?.value
        self.limits =
            try container.decodeIfPresent(Lenient<RequestLimits>.self, forKey: .limits)?.value ?? RequestLimits()

        let listeners = try container.decode([Lenient<ListenerConfiguration>].self, forKey: .listeners)
        self.listeners = listeners.enumerated().compactMap { index, element in
            element.value.map {
                var listener = $0; listener.index = index; return listener
            }
        }
        if listeners.isEmpty {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: container.codingPath + [CodingKeys.listeners],
                    debugDescription: "expected at least one listener"
                )
            )
        }

        let routes = try container.decodeIfPresent([Lenient<RouteConfiguration>].self, forKey: .routes) ?? []
        self.routes = routes.enumerated().compactMap { index, element in
            element.value.map {
                var route = $0; route.index = index; return route
            }
        }

        let backends =
            try container.decodeIfPresent([String: Lenient<PluginDeclaration>].self, forKey: .backends) ?? [:]
        let filters = try container.decodeIfPresent([String: Lenient<PluginDeclaration>].self, forKey: .filters) ?? [:]
        self.backends = backends.compactMapValues(\.value)
        self.filters = filters.compactMapValues(\.value)
        self.brokenDeclarations = Set(backends.filter { $0.value.value == nil }.keys)
            .union(filters.filter { $0.value.value == nil }.keys)
        let issuers =
            try container.decodeIfPresent([String: Lenient<IssuerConfiguration>].self, forKey: .issuers) ?? [:]
        self.issuers = issuers.compactMapValues(\.value)
        self.brokenIssuers = Set(issuers.filter { $0.value.value == nil }.keys)
        self.admin = try container.decodeIfPresent(Lenient<AdminConfiguration>.self, forKey: .admin)?.value
        self.watchConfig = try container.decodeIfPresent(Bool.self, forKey: .watchConfig) ?? false
        self.accessLog = try container.decodeIfPresent(Lenient<AccessLogConfiguration>.self, forKey: .accessLog)?.value
        self.tracing = try container.decodeIfPresent(Lenient<TracingConfiguration>.self, forKey: .tracing)?.value
        self.logFormat =
            try container.decodeIfPresent(Lenient<LogFormatSetting>.self, forKey: .logFormat)?.value ?? .text
    }
}

/// A log level name as written in the configuration.
/// The format of the gateway's own log lines.
public enum LogFormatSetting: String, ConfigEnum {
    /// One human-readable line per entry (swift-log's stream handler).
    case text
    /// One JSON object per line (``JSONLogHandler``).
    case json
}

public enum LogLevelSetting: String, ConfigEnum {
    case trace, debug, info, notice, warning, error, critical
}

/// Limits against bad input and slow clients, applied before a request reaches any backend.
public struct RequestLimits: Sendable, Decodable, Equatable {
    /// Largest total size of request header names and values, in bytes. Larger: 431. Default 32768.
    public var maxHeaderBytes: Int = 32768
    /// Most request header fields. More: 431. Default 100.
    public var maxHeaderCount: Int = 100
    /// Longest request target (path and query), in bytes. Longer: 414. Default 8192.
    public var maxURIBytes: Int = 8192
    /// Largest request body, in bytes, unless the route sets its own. Larger: 413. Default 10 MiB.
    public var maxBodyBytes: Int = 10 * 1024 * 1024
    /// Seconds a connection may stay without reads or writes before it is closed. Default 60.
    public var idleTimeoutSeconds: Double = 60
    /// Seconds a new connection gets to send a complete request head. Slower: 408. Default 10.
    public var headerReadTimeoutSeconds: Double = 10
    /// Most client connections open at once, over all listeners; a connection accepted past it
    /// is closed at once. Bounds the memory a flood of idle or slow connections can take.
    /// Default 16384.
    public var maxConnections: Int = 16384

    /// The largest request head NIO's HTTP/1.1 parser accepts (`HTTP_MAX_HEADER_SIZE`).
    static let parserHeadLimit = 80 * 1024

    public init() {}

    enum CodingKeys: String, CodingKey {
        case maxHeaderBytes, maxHeaderCount, maxURIBytes, maxBodyBytes, idleTimeoutSeconds, headerReadTimeoutSeconds
        case maxConnections
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        // Every bad limit is reported, not only the first: each one is recorded and replaced by
        // its default, and the recorded issues fail the configuration as a whole.
        let session = (decoder as? StrictConfigDecoder)?.session
        func positive<T: Decodable & Comparable & Numeric>(_ key: CodingKeys, _ fallback: T) throws -> T {
            do {
                guard let value = try container.decodeIfPresent(T.self, forKey: key) else { return fallback }
                guard value > 0 else {
                    throw DecodingError.dataCorrupted(
                        .init(
                            codingPath: container.codingPath + [key],
                            debugDescription: "expected a number greater than 0"
                        )
                    )
                }
                return value
            } catch {
                guard let session else { throw error }
                session.record(error, decodingValueAt: session.path(container.codingPath + [key]))
                return fallback
            }
        }
        self.maxHeaderBytes = try positive(.maxHeaderBytes, self.maxHeaderBytes)
        self.maxHeaderCount = try positive(.maxHeaderCount, self.maxHeaderCount)
        self.maxURIBytes = try positive(.maxURIBytes, self.maxURIBytes)
        self.maxBodyBytes = try positive(.maxBodyBytes, self.maxBodyBytes)
        self.idleTimeoutSeconds = try positive(.idleTimeoutSeconds, self.idleTimeoutSeconds)
        self.headerReadTimeoutSeconds = try positive(.headerReadTimeoutSeconds, self.headerReadTimeoutSeconds)
        self.maxConnections = try positive(.maxConnections, self.maxConnections)
        // NIO's HTTP/1.1 parser refuses heads over 80 KiB on its own (a 400 before any limit
        // of ours could answer 431): limits above it would be promises the gateway cannot keep.
        if self.maxHeaderBytes + self.maxURIBytes > Self.parserHeadLimit {
            let error = decoder.invalid(
                "maxHeaderBytes + maxURIBytes is \(self.maxHeaderBytes + self.maxURIBytes); the HTTP/1.1 parser "
                    + "accepts heads of at most \(Self.parserHeadLimit) bytes"
            )
            guard let session else { throw error }
            session.record(error.issue)
        }
    }
}

/// A backend or filter: which plugin implements it and that plugin's own configuration.
public struct PluginDeclaration: Sendable, Decodable {
    /// The plugin id, e.g. `"static"`, `"redirect"`, `"respond"`, `"http-proxy"`.
    public var plugin: String
    /// The plugin's configuration; its keys are documented with each plugin. Default `{}`.
    public var config: JSONValue
    /// Where `config` sits in the file, for error messages.
    public internal(set) var configPath: String = "$"

    public init(plugin: String, config: JSONValue = .object([:])) {
        self.plugin = plugin
        self.config = config
    }

    enum CodingKeys: String, CodingKey { case plugin, config }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.plugin = try container.decode(String.self, forKey: .plugin)
        self.config = try container.decodeIfPresent(JSONValue.self, forKey: .config) ?? .object([:])
        self.configPath = jsonPath(
            container.codingPath + [CodingKeys.config],
            base: (decoder as? StrictConfigDecoder)?.session.basePath ?? "$"
        )
    }
}
