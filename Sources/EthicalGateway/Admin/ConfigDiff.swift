/// What a candidate configuration changes against the one in service, by name: routes,
/// backends, filters, issuers and listeners added, removed or changed, and the other top-level
/// settings that differ. The answer of `POST /config/validate` and of every applied change.
public struct ConfigDiff: Sendable, Equatable {
    /// The changes of one named section.
    public struct Section: Sendable, Equatable {
        public var added: [String] = []
        public var removed: [String] = []
        public var changed: [String] = []

        var isEmpty: Bool { self.added.isEmpty && self.removed.isEmpty && self.changed.isEmpty }

        var json: JSONValue {
            .object([
                "added": .array(self.added.map(JSONValue.string)),
                "removed": .array(self.removed.map(JSONValue.string)),
                "changed": .array(self.changed.map(JSONValue.string)),
            ])
        }
    }

    public var routes = Section()
    public var backends = Section()
    public var filters = Section()
    public var issuers = Section()
    public var listeners = Section()
    /// Other top-level keys whose values differ (`limits`, `admin`, ...), sorted.
    public var settings: [String] = []

    static let namedSections: Set<String> = ["routes", "backends", "filters", "issuers", "listeners"]

    /// Compares two parsed configuration documents.
    public init(from old: JSONValue, to new: JSONValue) {
        self.routes = Self.compare(Self.namedElements(old["routes"]), Self.namedElements(new["routes"]))
        self.listeners = Self.compare(
            Self.namedElements(old["listeners"], defaultName: Self.listenerName),
            Self.namedElements(new["listeners"], defaultName: Self.listenerName)
        )
        self.backends = Self.compare(Self.members(old["backends"]), Self.members(new["backends"]))
        self.filters = Self.compare(Self.members(old["filters"]), Self.members(new["filters"]))
        self.issuers = Self.compare(Self.members(old["issuers"]), Self.members(new["issuers"]))
        let oldTop = Self.members(old)
        let newTop = Self.members(new)
        self.settings = Set(oldTop.keys).union(newTop.keys)
            .filter { !Self.namedSections.contains($0) && $0 != "$schema" && oldTop[$0] != newTop[$0] }
            .sorted()
    }

    /// Whether the two configurations are the same in everything but formatting.
    public var isEmpty: Bool {
        self.routes.isEmpty && self.backends.isEmpty && self.filters.isEmpty && self.issuers.isEmpty
            && self.listeners.isEmpty && self.settings.isEmpty
    }

    /// The diff as the admin API answers it.
    public var json: JSONValue {
        .object([
            "routes": self.routes.json, "backends": self.backends.json, "filters": self.filters.json,
            "issuers": self.issuers.json, "listeners": self.listeners.json,
            "settings": .array(self.settings.map(JSONValue.string)),
        ])
    }

    /// A one-line summary for logs, e.g. `routes +1 ~0 -0, backends +1 ~0 -0`.
    public var summary: String {
        let sections: [(String, Section)] = [
            ("routes", self.routes), ("backends", self.backends), ("filters", self.filters),
            ("issuers", self.issuers), ("listeners", self.listeners),
        ]
        var parts = sections.filter { !$0.1.isEmpty }.map {
            "\($0.0) +\($0.1.added.count) ~\($0.1.changed.count) -\($0.1.removed.count)"
        }
        if !self.settings.isEmpty { parts.append("settings \(self.settings.joined(separator: " "))") }
        return parts.isEmpty ? "no changes" : parts.joined(separator: ", ")
    }

    private static func compare(_ old: [String: JSONValue], _ new: [String: JSONValue]) -> Section {
        var section = Section()
        section.added = new.keys.filter { old[$0] == nil }.sorted()
        section.removed = old.keys.filter { new[$0] == nil }.sorted()
        section.changed = new.keys.filter { old[$0] != nil && old[$0] != new[$0] }.sorted()
        return section
    }

    private static func members(_ value: JSONValue?) -> [String: JSONValue] {
        guard case .object(let members)? = value else { return [:] }
        return members
    }

    /// The elements of an array of objects by their `"name"` (or `defaultName`, else the index).
    private static func namedElements(
        _ value: JSONValue?,
        defaultName: (([String: JSONValue]) -> String?)? = nil
    ) -> [String: JSONValue] {
        guard case .array(let elements)? = value else { return [:] }
        var named: [String: JSONValue] = [:]
        for (index, element) in elements.enumerated() {
            guard case .object(let members) = element else { continue }
            let name = members["name"]?.stringValue ?? defaultName?(members) ?? "#\(index)"
            named[name] = element
        }
        return named
    }

    /// A listener's default name, `address:port`, as ``ListenerConfiguration`` gives it.
    private static func listenerName(_ members: [String: JSONValue]) -> String? {
        guard case .number(let port)? = members["port"] else { return nil }
        return "\(members["address"]?.stringValue ?? "0.0.0.0"):\(Int(port))"
    }
}

extension JSONValue {
    /// The member `key` of an object; `nil` for anything else.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members[key]
    }
}
