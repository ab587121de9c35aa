/// A route ready to serve: its backend and filters provisioned, its rewrite and limits resolved.
///
/// A class: each request takes its route out of the route table and keeps it in its exchange;
/// as a struct of eight fields every hand-over retained and released each of them (about 1,900
/// instructions of a proxied request).
public final class CompiledRoute: Sendable {
    public let name: String
    public let backend: any Backend
    public let filters: [any Filter]
    public let rewrite: PathRewrite
    /// Largest accepted request body in bytes.
    public let maxBodyBytes: Int
    /// What to do with `%2F` / `%5C` in a path this route takes.
    public let escapedSlashes: EscapedSlashAction
    /// The backend's name in the configuration (for the access log).
    public let backendName: String
    /// Whether the route's requests go to the access log.
    public let accessLog: Bool

    public init(
        name: String,
        backend: any Backend,
        filters: [any Filter],
        rewrite: PathRewrite,
        maxBodyBytes: Int,
        escapedSlashes: EscapedSlashAction,
        backendName: String = "",
        accessLog: Bool = true
    ) {
        self.name = name
        self.backend = backend
        self.filters = filters
        self.rewrite = rewrite
        self.maxBodyBytes = maxBodyBytes
        self.escapedSlashes = escapedSlashes
        self.backendName = backendName
        self.accessLog = accessLog
    }
}
