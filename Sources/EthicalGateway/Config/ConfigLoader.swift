public import Foundation

/// Reads a configuration file and checks it as a whole: syntax, types, unknown keys, references
/// between sections and listener conflicts. Every issue is collected before anything throws.
public enum ConfigLoader {
    /// Environment variable naming the configuration file when `--config` is not given.
    public static let configPathVariable = "ETHICAL_GATEWAY_CONFIG"
    /// The configuration used when neither `--config` nor the environment names one.
    public static let defaultConfigPath = "config/gateway.json"

    /// Decodes and cross-checks the file at `url`.
    ///
    /// - Throws: ``ConfigValidationError`` with every issue found.
    public static func load(fileAt url: URL) throws -> GatewayConfiguration {
        try self.load(data: self.read(url))
    }

    /// The file's bytes, or an issue saying why they cannot be had.
    static func read(_ url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            let reason = FileManager.default.fileExists(atPath: url.path) ? "cannot be read" : "does not exist"
            throw ConfigValidationError([ConfigIssue(path: "$", message: "configuration file \(url.path) \(reason)")])
        }
    }

    /// Decodes and cross-checks configuration JSON.
    public static func load(data: Data) throws -> GatewayConfiguration {
        try self.load(document: JSONValue.parse(data))
    }

    /// Checks a parsed configuration document; see ``load(data:)``.
    public static func load(document: JSONValue) throws -> GatewayConfiguration {
        let (decoded, decodeIssues) = StrictConfigDecoder.decode(GatewayConfiguration.self, from: document)
        var issues = decodeIssues
        if let decoded {
            issues += self.crossCheck(decoded)
        }
        guard let configuration = decoded, issues.isEmpty else {
            throw ConfigValidationError(issues, partialConfiguration: decoded)
        }
        return configuration
    }

    /// Checks that need the whole document: references, names and ports.
    static func crossCheck(_ configuration: GatewayConfiguration) -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        let known = configuration.brokenDeclarations
        for route in configuration.routes {
            if configuration.backends[route.backend] == nil && !known.contains(route.backend) {
                let available = configuration.backends.keys.sorted().joined(separator: ", ")
                issues.append(
                    ConfigIssue(
                        path: "\(route.jsonPath).backend",
                        message:
                            "no backend named \"\(route.backend)\" (declared backends: \(available.isEmpty ? "none" : available))"
                    )
                )
            }
            for (offset, filter) in route.filters.enumerated()
            where configuration.filters[filter] == nil && !known.contains(filter) {
                let available = configuration.filters.keys.sorted().joined(separator: ", ")
                issues.append(
                    ConfigIssue(
                        path: "\(route.jsonPath).filters[\(offset)]",
                        message:
                            "no filter named \"\(filter)\" (declared filters: \(available.isEmpty ? "none" : available))"
                    )
                )
            }
        }
        issues += self.crossCheckAuth(configuration)
        issues += self.checkNames(configuration)
        var names: [String: ListenerConfiguration] = [:]
        for listener in configuration.listeners {
            if let other = names[listener.name] {
                issues.append(
                    ConfigIssue(
                        path: "\(listener.jsonPath).name",
                        message: "listener name \"\(listener.name)\" is already used by \(other.jsonPath)"
                    )
                )
            }
            names[listener.name] = listener
        }
        for (offset, listener) in configuration.listeners.enumerated() where listener.port != 0 {
            for earlier in configuration.listeners[..<offset]
            where earlier.port == listener.port && Self.addressesOverlap(earlier.address, listener.address) {
                issues.append(
                    ConfigIssue(
                        path: "\(listener.jsonPath).port",
                        message:
                            "port \(listener.port) on \(listener.address) is also used by listener \"\(earlier.name)\" (\(earlier.jsonPath))"
                    )
                )
            }
        }
        return issues
    }

    /// Every issuer a route's `auth` names must be declared.
    /// Names identify routes, backends, filters and issuers in logs, metrics and the admin API's
    /// URLs: 1 to 128 characters, no control characters, no `/`, not `.` or `..`; route names
    /// unique.
    private static func checkNames(_ configuration: GatewayConfiguration) -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        func check(_ name: String, at path: String) {
            if let problem = Self.nameProblem(name) { issues.append(ConfigIssue(path: path, message: problem)) }
        }
        for (section, names) in [
            ("backends", Array(configuration.backends.keys)), ("filters", Array(configuration.filters.keys)),
            ("issuers", Array(configuration.issuers.keys)),
        ] {
            for name in names.sorted() { check(name, at: "$.\(section)") }
        }
        var routes: [String: RouteConfiguration] = [:]
        for route in configuration.routes {
            check(route.name, at: "\(route.jsonPath).name")
            if let other = routes[route.name] {
                issues.append(
                    ConfigIssue(
                        path: "\(route.jsonPath).name",
                        message: "route name \"\(route.name)\" is already used by \(other.jsonPath)"
                    )
                )
            }
            routes[route.name] = route
        }
        return issues
    }

    /// Why `name` cannot name a configuration object, or `nil`.
    static func nameProblem(_ name: String) -> String? {
        let shown = name.unicodeScalars.map {
            $0.properties.generalCategory == .control || $0.value == 0x7F ? "?" : String($0)
        }
        .joined()
        if name.isEmpty || name.count > 128 { return "name \"\(shown.prefix(40))\" must have 1 to 128 characters" }
        if name == "." || name == ".." || name.contains("/") {
            return "name \"\(shown)\" cannot be \".\" or \"..\" or contain \"/\""
        }
        if name.unicodeScalars.contains(where: {
            $0.properties.generalCategory == .control || $0.properties.generalCategory == .format || $0 == " "
        }) {
            return "name \"\(shown)\" contains a space, control or formatting character"
        }
        return nil
    }

    private static func crossCheckAuth(_ configuration: GatewayConfiguration) -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        if let admin = configuration.admin {
            for (offset, name) in admin.issuers.enumerated()
            where configuration.issuers[name] == nil && !configuration.brokenIssuers.contains(name) {
                issues.append(
                    ConfigIssue(
                        path: "$.admin.issuers[\(offset)]",
                        message: "no issuer named \"\(name)\" under $.issuers"
                    )
                )
            }
            if admin.port != 0,
                let listener = configuration.listeners.first(where: {
                    $0.port == admin.port && Self.addressesOverlap($0.address, admin.address)
                })
            {
                issues.append(
                    ConfigIssue(
                        path: "$.admin.port",
                        message:
                            "port \(admin.port) on \(admin.address) is also used by listener \"\(listener.name)\" (\(listener.jsonPath))"
                    )
                )
            }
        }
        for route in configuration.routes {
            guard let auth = route.auth else { continue }
            for (offset, name) in auth.issuers.enumerated()
            where configuration.issuers[name] == nil && !configuration.brokenIssuers.contains(name) {
                let available = configuration.issuers.keys.sorted().joined(separator: ", ")
                issues.append(
                    ConfigIssue(
                        path: "\(route.jsonPath).auth.issuers[\(offset)]",
                        message:
                            "no issuer named \"\(name)\" (declared issuers: \(available.isEmpty ? "none" : available))"
                    )
                )
            }
        }
        return issues
    }

    /// Two bind addresses conflict on one port when equal or when either is a wildcard of the same family.
    private static func addressesOverlap(_ lhs: String, _ rhs: String) -> Bool {
        if lhs == rhs { return true }
        let wildcards: Set<String> = ["0.0.0.0", "::"]
        let lhsIsV6 = lhs.contains(":")
        let rhsIsV6 = rhs.contains(":")
        return (wildcards.contains(lhs) || wildcards.contains(rhs))
            && (lhsIsV6 == rhsIsV6 || lhs == "::" || rhs == "::")
    }
}
