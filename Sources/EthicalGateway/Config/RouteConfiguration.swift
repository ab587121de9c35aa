/// One entry of the routing table: which requests it matches, what runs on them and where they go.
///
/// ```json
/// { "name": "api", "match": { "hosts": ["api.example.com"], "pathPrefix": "/v1", "methods": ["GET"] },
///   "stripPrefix": true, "filters": ["cors"], "backend": "api-servers" }
/// ```
public struct RouteConfiguration: Sendable, Decodable {
    /// Name used in logs and errors. Default `"routes[<index>]"`.
    public var name: String
    /// Which requests this route takes. Default: every request (a catch-all).
    public var match: RouteMatchConfiguration
    /// Name of the backend (in `backends`) that answers the request.
    public var backend: String
    /// Names of filters (in `filters`) that run before the backend, in this order. Default `[]`.
    public var filters: [String]
    /// Remove the matched `pathPrefix` from the path before the backend sees it (`/api/users`
    /// matched by `/api` becomes `/users`). Default `false`.
    public var stripPrefix: Bool
    /// Replace the matched path prefix (or the whole path of an exact `path` match) with this
    /// value, e.g. `"/v2"`. Cannot be combined with `stripPrefix`.
    public var rewritePrefix: String?
    /// Largest request body for this route, in bytes. Default: `limits.maxBodyBytes`.
    public var maxBodyBytes: Int?
    /// What to do with an encoded slash or backslash (`%2F`, `%5C`) in the path: `"reject"`
    /// (400, the default), `"decode"` (forward them as `/`) or `"keep"` (forward them unchanged,
    /// for upstreams that treat `%2F` as data, e.g. object keys). The route is always chosen on
    /// the decoded form, so an encoded slash never selects a route with weaker auth.
    public var escapedSlashes: EscapedSlashAction = .reject
    /// Token policy: requests must carry a valid token from one of the named issuers before
    /// the route's filters and backend run. Default: no authentication.
    public var auth: RouteAuthConfiguration?
    /// Whether this route's requests go to the access log (when `accessLog` is configured).
    /// Default `true`; `false` for noisy routes such as health checks.
    public var accessLog: Bool = true
    /// Position in the `routes` array.
    public internal(set) var index: Int = 0

    public var jsonPath: String { "$.routes[\(self.index)]" }

    public init(
        name: String? = nil,
        match: RouteMatchConfiguration = RouteMatchConfiguration(),
        backend: String,
        filters: [String] = [],
        stripPrefix: Bool = false,
        rewritePrefix: String? = nil,
        maxBodyBytes: Int? = nil
    ) {
        self.name = name ?? "unnamed"
        self.match = match
        self.backend = backend
        self.filters = filters
        self.stripPrefix = stripPrefix
        self.rewritePrefix = rewritePrefix
        self.maxBodyBytes = maxBodyBytes
    }

    enum CodingKeys: String, CodingKey {
        case name, match, backend, filters, stripPrefix, rewritePrefix, maxBodyBytes, escapedSlashes, auth, accessLog
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let index = decoder.codingPath.last?.intValue ?? 0
        self.name = try container.decodeIfPresent(String.self, forKey: .name) ?? "routes[\(index)]"
        self.match =
            try container.decodeIfPresent(RouteMatchConfiguration.self, forKey: .match) ?? RouteMatchConfiguration()
        self.backend = try container.decode(String.self, forKey: .backend)
        self.filters = try container.decodeIfPresent([String].self, forKey: .filters) ?? []
        self.stripPrefix = try container.decodeIfPresent(Bool.self, forKey: .stripPrefix) ?? false
        self.rewritePrefix = try container.decodeIfPresent(String.self, forKey: .rewritePrefix)
        self.maxBodyBytes = try container.decodeIfPresent(Int.self, forKey: .maxBodyBytes)
        self.escapedSlashes = try container.decodeIfPresent(EscapedSlashAction.self, forKey: .escapedSlashes) ?? .reject
        self.auth = try container.decodeIfPresent(RouteAuthConfiguration.self, forKey: .auth)
        self.accessLog = try container.decodeIfPresent(Bool.self, forKey: .accessLog) ?? true
        if let rewrite = self.rewritePrefix {
            if self.stripPrefix {
                throw decoder.invalid(
                    "\"stripPrefix\" and \"rewritePrefix\" cannot both be set; stripPrefix is rewritePrefix \"/\""
                )
            }
            if !rewrite.hasPrefix("/") {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: container.codingPath + [CodingKeys.rewritePrefix],
                        debugDescription: "expected a path starting with \"/\""
                    )
                )
            }
        }
        if let max = self.maxBodyBytes, max < 0 {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: container.codingPath + [CodingKeys.maxBodyBytes],
                    debugDescription: "expected a number of bytes >= 0"
                )
            )
        }
    }
}

/// The conditions a request must meet for a route to take it. All given conditions must hold.
public struct RouteMatchConfiguration: Sendable, Decodable, Hashable {
    /// Host names (from `Host` or `:authority`, port ignored): exact (`"api.example.com"`) or a
    /// wildcard for one label (`"*.example.com"`). Default: any host.
    public var hosts: [String]?
    /// The path must equal this value exactly (`"/healthz"`).
    public var path: String?
    /// The path must start with this prefix on a segment boundary: `"/api"` matches `/api` and
    /// `/api/users` but not `/apix`. Default `"/"` when `path` is not given.
    public var pathPrefix: String?
    /// Accepted methods, e.g. `["GET", "HEAD"]`. Default: any method.
    public var methods: [String]?
    /// Headers that must be present with exactly these values (names are case-insensitive).
    public var headers: [String: String]?

    public init(
        hosts: [String]? = nil,
        path: String? = nil,
        pathPrefix: String? = nil,
        methods: [String]? = nil,
        headers: [String: String]? = nil
    ) {
        self.hosts = hosts
        self.path = path
        self.pathPrefix = pathPrefix
        self.methods = methods
        self.headers = headers
    }

    enum CodingKeys: String, CodingKey { case hosts, path, pathPrefix, methods, headers }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func fail(_ key: CodingKeys, _ message: String) -> DecodingError {
            DecodingError.dataCorrupted(.init(codingPath: container.codingPath + [key], debugDescription: message))
        }
        self.hosts = try container.decodeIfPresent([String].self, forKey: .hosts)
        for (offset, host) in (self.hosts ?? []).enumerated() where HostPattern(host) == nil {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: container.codingPath + [CodingKeys.hosts, AnyCodingKey(index: offset)],
                    debugDescription:
                        "expected a host name such as \"example.com\" or \"*.example.com\", found \"\(host)\""
                )
            )
        }
        self.path = try container.decodeIfPresent(String.self, forKey: .path)
        self.pathPrefix = try container.decodeIfPresent(String.self, forKey: .pathPrefix)
        if self.path != nil && self.pathPrefix != nil {
            throw fail(.pathPrefix, "\"path\" (exact) and \"pathPrefix\" cannot both be set")
        }
        // Requests are routed on their canonical path (see CanonicalPath), so the route's own
        // path is put in that form too: "/café" and "/caf%c3%a9" both match "/caf%C3%A9".
        func canonical(_ value: String?, _ key: CodingKeys) throws -> String? {
            guard let value else { return nil }
            guard value.hasPrefix("/") else {
                throw fail(key, "expected a path starting with \"/\", found \"\(value)\"")
            }
            switch CanonicalPath.make(Substring(value)) {
            case .failure(let refusal):
                throw fail(key, "\(refusal) (in \"\(value)\")")
            case .success(let path) where path.slashesDecoded != nil:
                throw fail(
                    key,
                    "a route path cannot contain %2F or %5C: requests are routed with them decoded (see escapedSlashes)"
                )
            case .success(let path):
                return path.path
            }
        }
        self.path = try canonical(self.path, .path)
        self.pathPrefix = try canonical(self.pathPrefix, .pathPrefix)
        self.methods = try container.decodeIfPresent([String].self, forKey: .methods)
        if let methods = self.methods {
            if methods.isEmpty {
                throw fail(.methods, "expected at least one method, or leave \"methods\" out to accept any")
            }
            for (offset, method) in methods.enumerated() where !isHTTPToken(method) || method.uppercased() != method {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: container.codingPath + [CodingKeys.methods, AnyCodingKey(index: offset)],
                        debugDescription: "expected an upper-case HTTP method such as \"GET\", found \"\(method)\""
                    )
                )
            }
        }
        self.headers = try container.decodeIfPresent([String: String].self, forKey: .headers)
        for name in (self.headers ?? [:]).keys where !isHTTPToken(name) {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: container.codingPath + [CodingKeys.headers, AnyCodingKey(name)],
                    debugDescription: "\"\(name)\" is not a valid header name"
                )
            )
        }
    }
}

/// Whether `string` is an RFC 9110 token (method and header-name syntax).
func isHTTPToken(_ string: String) -> Bool {
    !string.isEmpty
        && string.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            default:
                return "!#$%&'*+-.^_`|~".utf8.contains(byte)
            }
        }
}
