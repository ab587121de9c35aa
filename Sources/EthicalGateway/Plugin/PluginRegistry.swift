/// The plugins a gateway binary knows, by id. The executable builds it from one explicit list.
///
/// ```swift
/// var registry = PluginRegistry()
/// registry.register(StaticFilesPlugin.self)
/// registry.register(RespondPlugin.self)
/// ```
public struct PluginRegistry: Sendable {
    typealias BackendFactory = @Sendable (JSONValue, String, PluginContext) throws -> any Backend
    typealias FilterFactory = @Sendable (JSONValue, String, PluginContext) throws -> any Filter

    private var backendFactories: [String: BackendFactory] = [:]
    private var filterFactories: [String: FilterFactory] = [:]

    public init() {}

    /// Registers a backend plugin. Registering an id twice is a programming error.
    public mutating func register<Plugin: BackendPlugin>(_ plugin: Plugin.Type) {
        precondition(self.backendFactories[Plugin.id] == nil, "backend plugin \(Plugin.id) registered twice")
        self.backendFactories[Plugin.id] = { config, path, context in
            let configuration = try decodePluginConfiguration(Plugin.Configuration.self, from: config, at: path)
            return try Plugin.provision(configuration, context: context)
        }
    }

    /// Registers a filter plugin.
    public mutating func register<Plugin: FilterPlugin>(_ plugin: Plugin.Type) {
        precondition(self.filterFactories[Plugin.id] == nil, "filter plugin \(Plugin.id) registered twice")
        self.filterFactories[Plugin.id] = { config, path, context in
            let configuration = try decodePluginConfiguration(Plugin.Configuration.self, from: config, at: path)
            return try Plugin.provision(configuration, context: context)
        }
    }

    /// Ids of the registered backend plugins, sorted.
    public var backendIDs: [String] { self.backendFactories.keys.sorted() }
    /// Ids of the registered filter plugins, sorted.
    public var filterIDs: [String] { self.filterFactories.keys.sorted() }

    /// Decodes and provisions one backend declaration (the caller validates it).
    func makeBackend(_ declaration: PluginDeclaration, pluginPath: String, context: PluginContext) throws -> any Backend
    {
        guard let factory = self.backendFactories[declaration.plugin] else {
            throw ConfigValidationError([
                ConfigIssue(
                    path: pluginPath,
                    message:
                        "unknown backend plugin \"\(declaration.plugin)\" (available: \(self.backendIDs.joined(separator: ", ")))"
                )
            ])
        }
        return try factory(declaration.config, declaration.configPath, context)
    }

    /// Decodes and provisions one filter declaration.
    func makeFilter(_ declaration: PluginDeclaration, pluginPath: String, context: PluginContext) throws -> any Filter {
        guard let factory = self.filterFactories[declaration.plugin] else {
            let available = self.filterIDs.isEmpty ? "none" : self.filterIDs.joined(separator: ", ")
            throw ConfigValidationError([
                ConfigIssue(
                    path: pluginPath,
                    message: "unknown filter plugin \"\(declaration.plugin)\" (available: \(available))"
                )
            ])
        }
        return try factory(declaration.config, declaration.configPath, context)
    }
}

/// Decodes a plugin's configuration strictly, throwing every issue at once.
func decodePluginConfiguration<T: Decodable>(_ type: T.Type, from value: JSONValue, at path: String) throws -> T {
    let (decoded, issues) = StrictConfigDecoder.decode(type, from: value, basePath: path)
    if let decoded, issues.isEmpty {
        return decoded
    }
    throw ConfigValidationError(issues)
}
