/// A backend plugin: a type registered under a stable id that turns its configuration into a
/// ``Backend``.
///
/// Lifecycle (Caddy's Provision/Validate/Cleanup is the model): the gateway decodes
/// ``Configuration`` strictly from the backend's `config` object (unknown keys are errors), then
/// calls ``provision(_:context:)`` (no side effects: no connections, timers or writes), then
/// ``Backend/validate()``; once the whole configuration is valid, ``Backend/start()``; when the
/// configuration is retired, ``Backend/shutdown()`` (awaited). A backend whose declaration a
/// reload leaves unchanged is carried over as the same instance; the reload still provisions
/// and validates a fresh one (never started) to check it against the new configuration. A thrown
/// error names the JSON path (``PluginContext/error(_:_:)``) and stops the configuration from
/// loading.
public protocol BackendPlugin: SendableMetatype {
    /// The plugin's configuration, decoded strictly. Document every field where it is declared.
    associatedtype Configuration: Decodable & Sendable
    /// The id configs use in `"plugin"`, e.g. `"static"`.
    static var id: String { get }
    /// Builds the backend: read files, check folders, precompute responses; start nothing.
    static func provision(_ configuration: Configuration, context: PluginContext) throws -> any Backend
}

/// A filter plugin: a type registered under a stable id that turns its configuration into a ``Filter``.
public protocol FilterPlugin: SendableMetatype {
    associatedtype Configuration: Decodable & Sendable
    static var id: String { get }
    static func provision(_ configuration: Configuration, context: PluginContext) throws -> any Filter
}
