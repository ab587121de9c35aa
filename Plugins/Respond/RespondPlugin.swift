public import EthicalGateway
import NIOCore
import NIOHTTP1

/// The `respond` backend: a fixed status, headers and body. For health checks, maintenance
/// pages, `robots.txt` and answering unknown hosts.
///
/// ```json
/// "health": { "plugin": "respond", "config": { "status": 200, "body": "ok" } }
/// ```
public enum RespondPlugin: BackendPlugin {
    public static let id = "respond"

    /// Configuration of a `respond` backend.
    public struct Configuration: Decodable, Sendable {
        /// HTTP status code, 200 to 599. Default 200.
        public var status: Int
        /// Response headers. `Content-Length` is always computed.
        public var headers: [String: String]
        /// Response body. Default empty.
        public var body: String
        /// `Content-Type` when `headers` sets none and the body is not empty.
        /// Default `"text/plain; charset=utf-8"`.
        public var contentType: String

        enum CodingKeys: String, CodingKey { case status, headers, body, contentType }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.status = try container.decodeIfPresent(Int.self, forKey: .status) ?? 200
            self.headers = try container.decodeIfPresent([String: String].self, forKey: .headers) ?? [:]
            self.body = try container.decodeIfPresent(String.self, forKey: .body) ?? ""
            self.contentType =
                try container.decodeIfPresent(String.self, forKey: .contentType) ?? "text/plain; charset=utf-8"
        }
    }

    public static func provision(_ configuration: Configuration, context: PluginContext) throws -> any Backend {
        guard (200...599).contains(configuration.status) else {
            throw context.error("status", "expected a status code between 200 and 599, found \(configuration.status)")
        }
        var headers = HTTPHeaders()
        for (name, value) in configuration.headers.sorted(by: { $0.key < $1.key }) {
            guard isValidHeader(name: name, value: value) else {
                throw context.error("headers", "\"\(name)\" is not a valid header name with a valid value")
            }
            headers.add(name: name, value: value)
        }
        if !configuration.body.isEmpty && !headers.contains(name: "content-type") {
            headers.add(name: "content-type", value: configuration.contentType)
        }
        return RespondBackend(
            status: HTTPResponseStatus(statusCode: configuration.status),
            headers: headers,
            body: ByteBuffer(string: configuration.body)
        )
    }
}

/// Answers every request with the same precomputed response.
struct RespondBackend: Backend {
    let response: GatewayResponse

    init(status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer) {
        self.response = GatewayResponse(status: status, headers: headers, body: body)
    }

    func handle(_ request: GatewayRequest, response: ResponseWriter) -> any RequestBodyReceiver {
        response.respond(self.response)
        return DiscardingBodyReceiver.shared
    }
}

/// A header name is an RFC 9110 token; a value has no control characters.
func isValidHeader(name: String, value: String) -> Bool {
    let tokenExtras = Set("!#$%&'*+-.^_`|~".utf8)
    let nameValid =
        !name.isEmpty
        && name.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || tokenExtras.contains($0)
        }
    let valueValid = value.utf8.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }
    return nameValid && valueValid
}
