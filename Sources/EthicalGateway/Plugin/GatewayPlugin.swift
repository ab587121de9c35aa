/// A backend plugin: a type registered under a stable id that turns its configuration into a
/// ``Backend``.
///
/// Lifecycle: the gateway decodes ``Configuration`` strictly from the backend's `config` object
/// (unknown keys are errors), then calls ``provision(_:context:)``, then ``Backend/validate()``;
/// when validation fails the backend is shut down again. A thrown error names the JSON path
/// (``PluginContext/error(_:_:)``) and stops the configuration from loading.
public protocol BackendPlugin: SendableMetatype {
    /// The plugin's configuration, decoded strictly. Document every field where it is declared.
    associatedtype Configuration: Decodable & Sendable
    /// The id configs use in `"plugin"`, e.g. `"static"`.
    static var id: String { get }
    /// Builds the backend: open files, check folders, precompute responses.
    static func provision(_ configuration: Configuration, context: PluginContext) throws -> any Backend
}

/// A filter plugin: a type registered under a stable id that turns its configuration into a ``Filter``.
public protocol FilterPlugin: SendableMetatype {
    associatedtype Configuration: Decodable & Sendable
    static var id: String { get }
    static func provision(_ configuration: Configuration, context: PluginContext) throws -> any Filter
}
