import Foundation
import Logging
import NIOHTTP1

/// Asks an issuer's introspection endpoint (RFC 7662) about an opaque token.
///
/// The gateway authenticates with HTTP Basic (`client_secret_basic`). An active answer becomes a
/// ``VerifiedToken`` with the answer's claims, cached like a verified JWT until its `exp`, at most
/// `maxCacheSeconds`; an inactive one is refused.
final class Introspector: Sendable {
    private let configuration: IntrospectionConfiguration
    private let issuer: IssuerConfiguration
    private let url: HTTPSURL
    private let authorization: String
    private let fetcher: HTTPSFetcher
    private let logger: Logger
    private let gate: IntrospectionGate

    init(issuer: IssuerConfiguration, secret: String, fetcher: HTTPSFetcher, logger: Logger) {
        let configuration = issuer.introspection!
        self.configuration = configuration
        self.issuer = issuer
        self.url = HTTPSURL(configuration.url)!
        // RFC 6749 §2.3.1: the id and secret are form-encoded before Basic encoding.
        let credentials = "\(Self.formEncode(configuration.clientID)):\(Self.formEncode(secret))"
        self.authorization = "Basic " + Data(credentials.utf8).base64EncodedString()
        self.fetcher = fetcher
        self.logger = logger
        self.gate = IntrospectionGate(
            refusalSeconds: configuration.refusalCacheSeconds,
            maxInFlight: configuration.maxConcurrentCalls
        )
    }

    /// The endpoint's verdict on `token`, through the ``IntrospectionGate``.
    func introspect(_ token: String) async -> Result<VerifiedToken, TokenRefusal> {
        await self.gate.check(token) { await self.call(token) }
    }

    private func call(_ token: String) async -> Result<VerifiedToken, TokenRefusal> {
        let response: HTTPSFetcher.Response
        do {
            var headers = HTTPHeaders()
            headers.add(name: "Authorization", value: self.authorization)
            response = try await self.fetcher.postForm(
                self.url,
                form: "token=\(Self.formEncode(token))&token_type_hint=access_token",
                headers: headers
            )
            guard response.status == .ok else {
                throw HTTPSFetchError("the introspection endpoint answered \(response.status.code)")
            }
        } catch {
            self.logger.warning(
                "token introspection failed",
                metadata: ["issuer": "\(self.issuer.name)", "error": "\(error)"]
            )
            return .failure(TokenRefusal(.keysUnavailable, "the token cannot be checked at the moment"))
        }
        let body = Data(response.body.readableBytesView)
        guard case .object(let claims)? = try? JSONDecoder().decode(JSONValue.self, from: body) else {
            self.logger.warning(
                "token introspection answered no JSON object",
                metadata: ["issuer": "\(self.issuer.name)"]
            )
            return .failure(TokenRefusal(.keysUnavailable, "the token cannot be checked at the moment"))
        }
        do throws(TokenRefusal) {
            return .success(
                try VerifiedToken(
                    introspected: claims,
                    encoded: Base64URL.encode(body),
                    issuer: self.issuer,
                    now: Date().timeIntervalSince1970
                )
            )
        } catch {
            return .failure(error)
        }
    }

    /// `application/x-www-form-urlencoded` encoding of one value.
    static func formEncode(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._*")
        return (value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)
            .replacingOccurrences(of: "%20", with: "+")
    }
}
