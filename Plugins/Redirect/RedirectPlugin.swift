public import EthicalGateway
import Foundation
import NIOCore
import NIOHTTP1

/// The `redirect` backend: sends clients elsewhere, optionally keeping the path and query.
///
/// ```json
/// "old-docs": { "plugin": "redirect", "config": { "location": "https://docs.example.com", "status": 301 } }
/// ```
/// With `appendPath` (the default), `/guide?x=1` on the route goes to
/// `https://docs.example.com/guide?x=1` (the path after the route's `stripPrefix`/`rewritePrefix`).
public enum RedirectPlugin: BackendPlugin {
    public static let id = "redirect"

    /// Configuration of a `redirect` backend.
    public struct Configuration: Decodable, Sendable {
        /// Where to send clients: an absolute `http(s)://` URL or a path starting with `/`.
        public var location: String
        /// 301, 302, 303, 307 or 308. Default 308 (permanent, keeps the method and body).
        public var status: Int
        /// Append the request's path and query to `location`. Default `true`.
        public var appendPath: Bool

        enum CodingKeys: String, CodingKey { case location, status, appendPath }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.location = try container.decode(String.self, forKey: .location)
            self.status = try container.decodeIfPresent(Int.self, forKey: .status) ?? 308
            self.appendPath = try container.decodeIfPresent(Bool.self, forKey: .appendPath) ?? true
        }
    }

    public static func provision(_ configuration: Configuration, context: PluginContext) throws -> any Backend {
        guard [301, 302, 303, 307, 308].contains(configuration.status) else {
            throw context.error("status", "expected one of 301, 302, 303, 307, 308, found \(configuration.status)")
        }
        let location = configuration.location
        let isPath = location.hasPrefix("/") && !location.hasPrefix("//")
        let components = URLComponents(string: location)
        let isURL =
            ["http", "https"].contains(components?.scheme?.lowercased() ?? "") && !(components?.host ?? "").isEmpty
        guard isPath || isURL, !location.contains("?") || !configuration.appendPath,
            location.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else {
            throw context.error(
                "location",
                "expected an absolute http(s) URL or a path starting with \"/\" (without a query when appendPath is true), found \"\(location)\""
            )
        }
        var base = location
        if configuration.appendPath { while base.hasSuffix("/") { base.removeLast() } }
        return RedirectBackend(
            base: base,
            status: HTTPResponseStatus(statusCode: configuration.status),
            appendPath: configuration.appendPath
        )
    }
}

struct RedirectBackend: Backend {
    let base: String
    let status: HTTPResponseStatus
    let appendPath: Bool

    func handle(_ request: GatewayRequest, response: ResponseWriter) -> any RequestBodyReceiver {
        var target = self.base
        if self.appendPath {
            target += request.path
            if let query = request.query { target += "?" + query }
        }
        response.respond(GatewayResponse(status: self.status, headers: ["location": target]))
        return DiscardingBodyReceiver.shared
    }
}
