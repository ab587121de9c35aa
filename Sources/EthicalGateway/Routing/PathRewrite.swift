/// How a route changes the path before its backend sees it.
public enum PathRewrite: Sendable, Hashable {
    case none
    /// Replace the matched prefix with this value (`stripPrefix` is `"/"`).
    case replacePrefix(String)

    public init(stripPrefix: Bool, rewritePrefix: String?) {
        if stripPrefix {
            self = .replacePrefix("/")
        } else if let rewritePrefix {
            self = .replacePrefix(rewritePrefix)
        } else {
            self = .none
        }
    }

    /// The rewritten path. `/api/users` with prefix `/api` and replacement `/` gives `/users`;
    /// with replacement `/v2` it gives `/v2/users`.
    public func apply(to path: Substring, matchedPrefix: Substring) -> String {
        guard case .replacePrefix(let replacement) = self else { return String(path) }
        let rest = path[matchedPrefix.endIndex...]
        if rest.isEmpty { return replacement }
        if replacement.hasSuffix("/") { return replacement + rest.dropFirst() }
        return replacement + rest
    }
}
