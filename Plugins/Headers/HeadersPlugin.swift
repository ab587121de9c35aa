public import EthicalGateway
import NIOHTTP1

/// The `headers` filter: sets and removes request headers before the backend and response
/// headers after it. The compiled-in counterpart of the header-rewrite wasm guest.
///
/// ```json
/// "tag": { "plugin": "headers", "config": {
///   "request": { "set": { "X-Seen": "1" }, "remove": ["X-Debug"] },
///   "response": { "set": { "X-Served-By": "gateway" } } } }
/// ```
public enum HeadersPlugin: FilterPlugin {
    public static let id = "headers"

    /// Configuration of a `headers` filter.
    public struct Configuration: Decodable, Sendable {
        /// Changes to the request, before the backend. Default none.
        public var request: HeaderChanges
        /// Changes to the response head. Default none.
        public var response: HeaderChanges

        enum CodingKeys: String, CodingKey { case request, response }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.request = try container.decodeIfPresent(HeaderChanges.self, forKey: .request) ?? HeaderChanges()
            self.response = try container.decodeIfPresent(HeaderChanges.self, forKey: .response) ?? HeaderChanges()
        }
    }

    /// Headers to remove, then headers to set (replacing any of the same name).
    public struct HeaderChanges: Decodable, Sendable {
        /// Header names whose fields are removed. Default `[]`.
        public var remove: [String]
        /// Header values set, replacing the fields of the same name. Default `{}`.
        public var set: [String: String]

        enum CodingKeys: String, CodingKey { case remove, set }

        init() {
            self.remove = []
            self.set = [:]
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.remove = try container.decodeIfPresent([String].self, forKey: .remove) ?? []
            self.set = try container.decodeIfPresent([String: String].self, forKey: .set) ?? [:]
        }
    }

    public static func provision(_ configuration: Configuration, context: PluginContext) throws -> any Filter {
        HeadersFilter(
            request: try HeaderEdit(configuration.request, at: "request", context: context),
            response: try HeaderEdit(configuration.response, at: "response", context: context)
        )
    }
}

/// Validated header changes, applied in one pass.
struct HeaderEdit: Sendable {
    let remove: [String]
    let set: [(name: String, value: String)]

    init(_ changes: HeadersPlugin.HeaderChanges, at key: String, context: PluginContext) throws {
        for name in changes.remove where !isHeaderToken(name) {
            throw context.error("\(key).remove", "\"\(name)\" is not a valid header name")
        }
        for (name, value) in changes.set {
            guard isHeaderToken(name), value.utf8.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
                throw context.error("\(key).set", "\"\(name)\" is not a valid header name with a valid value")
            }
        }
        self.remove = changes.remove
        self.set = changes.set.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
    }

    func apply(to headers: inout HTTPHeaders) {
        for name in self.remove { headers.remove(name: name) }
        for field in self.set { headers.replaceOrAdd(name: field.name, value: field.value) }
    }
}

struct HeadersFilter: Filter {
    let request: HeaderEdit
    let response: HeaderEdit

    func filterRequest(_ request: inout GatewayRequest) -> FilterOutcome {
        self.request.apply(to: &request.head.headers)
        return .proceed
    }

    func filterResponse(_ head: inout HTTPResponseHead, for request: GatewayRequest) {
        self.response.apply(to: &head.headers)
    }
}

/// An RFC 9110 token.
func isHeaderToken(_ name: String) -> Bool {
    !name.isEmpty
        && name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A)
                || "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
}
