/// A route ready to serve: its backend and filters provisioned, its rewrite and limits resolved.
public struct CompiledRoute: Sendable {
    public let name: String
    public let backend: any Backend
    public let filters: [any Filter]
    public let rewrite: PathRewrite
    /// Largest accepted request body in bytes.
    public let maxBodyBytes: Int
    /// What to do with `%2F` / `%5C` in a path this route takes.
    public let escapedSlashes: EscapedSlashAction
    /// The backend's name in the configuration (for the access log).
    public var backendName: String = ""
    /// Whether the route's requests go to the access log.
    public var accessLog: Bool = true
}
