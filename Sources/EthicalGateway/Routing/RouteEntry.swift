public import NIOHTTP1

/// A route's path condition.
public enum PathCondition: Hashable, Sendable, CustomStringConvertible {
    /// The path equals the value.
    case exact(String)
    /// The path starts with the value on a segment boundary. Stored without a trailing slash
    /// (`/` is stored as the empty string).
    case prefix(String)

    /// Builds the condition of a route's `match` (`pathPrefix` `/` when neither is set).
    public init(path: String?, pathPrefix: String?) {
        if let path {
            self = .exact(path)
        } else {
            var prefix = pathPrefix ?? "/"
            while prefix.hasSuffix("/") { prefix.removeLast() }
            self = .prefix(prefix)
        }
    }

    public var description: String {
        switch self {
        case .exact(let path): return "path \(path)"
        case .prefix(let prefix): return "pathPrefix \(prefix.isEmpty ? "/" : prefix)"
        }
    }
}

/// A header a request must carry with an exact value.
public struct HeaderCondition: Hashable, Sendable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name.lowercased()
        self.value = value
    }
}

/// One route as the route table sees it: its conditions and what it leads to.
public struct RouteEntry<Target: Sendable>: Sendable {
    /// The route's name, for errors and logs.
    public var name: String
    /// Where the route is declared, e.g. `$.routes[3]`.
    public var jsonPath: String
    /// Host patterns; empty means any host.
    public var hosts: [HostPattern]
    public var path: PathCondition
    /// Accepted methods; `nil` means any.
    public var methods: Set<String>?
    public var headers: [HeaderCondition]
    /// What a match yields (the compiled route with its backend and filters).
    public var target: Target

    public init(
        name: String,
        jsonPath: String,
        hosts: [HostPattern] = [],
        path: PathCondition = .prefix(""),
        methods: Set<String>? = nil,
        headers: [HeaderCondition] = [],
        target: Target
    ) {
        self.name = name
        self.jsonPath = jsonPath
        self.hosts = hosts
        self.path = path
        self.methods = methods
        self.headers = headers
        self.target = target
    }

    /// Whether method and headers fit (host and path are matched by the table's structure).
    @inlinable
    func accepts(method: HTTPMethod, headers: HTTPHeaders) -> Bool {
        if let methods = self.methods, !methods.contains(method.rawValue) {
            return false
        }
        for condition in self.headers {
            guard headers[condition.name].contains(condition.value) else { return false }
        }
        return true
    }

    /// Routes with more conditions come first: a method list beats none, then more headers.
    static func precedes(_ lhs: Self, _ rhs: Self) -> Bool {
        if (lhs.methods != nil) != (rhs.methods != nil) { return lhs.methods != nil }
        return lhs.headers.count > rhs.headers.count
    }
}
