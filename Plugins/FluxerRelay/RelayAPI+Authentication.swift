import EthicalGateway
import Foundation
import NIOCore
import NIOHTTP1

/// Who may call the HTTP API: an API key, a token the route's `auth` verified, or a bearer token
/// verified through ``RelayAuthenticator`` (the path `connect` and `refresh` use); tokens need
/// `apiScope`. Refusals are 401 or 403 problem documents with an RFC 6750 challenge.
extension RelayAPI {
    /// 401: no credentials, or ones that are not valid (RFC 6750 3.1: `invalid_token` for a
    /// bearer token that was refused).
    func refuse(_ reason: String, error: String? = nil) {
        var challenge = "Bearer realm=\"fluxer-relay\""
        if let error { challenge += ", error=\"\(error)\"" }
        var headers = HTTPHeaders()
        headers.add(name: "www-authenticate", value: challenge)
        self.respondProblem(.unauthorized, reason, headers: headers)
    }

    /// 403: a valid token without the API scope (RFC 6750 3.1: `insufficient_scope`, naming
    /// the scope needed), as routes with `auth` answer; a new token with the scope would do.
    func forbid(_ reason: String) {
        let scope = self.relay.configuration.apiScope
        var headers = HTTPHeaders()
        headers.add(
            name: "www-authenticate",
            value: "Bearer realm=\"fluxer-relay\", error=\"insufficient_scope\", scope=\"\(scope)\""
        )
        self.respondProblem(.forbidden, reason, headers: headers)
    }

    enum Credentials {
        case accepted
        /// Missing or not valid: 401.
        case refused(String)
        /// A valid token without the API scope: 403.
        case forbidden(String)
        /// A bearer token for ``RelayAuthenticator``.
        case verify(String)
    }

    /// An API key (`X-API-Key` or `Authorization: apikey KEY`), a token the route's `auth`
    /// verified, or a bearer token verified here by the relay's `issuers`; tokens need `apiScope`.
    func credentials() -> Credentials {
        let headers = self.request.head.headers
        let authorization = headers.first(name: "authorization")
        let scope = self.relay.configuration.apiScope
        var presentedKey = headers.first(name: "x-api-key")
        if let authorization, authorization.lowercased().hasPrefix("apikey ") {
            presentedKey = String(authorization.dropFirst("apikey ".count))
        }
        if let presentedKey {
            guard let key = self.relay.apiKey else { return .refused("this relay has no API key; use a token") }
            return constantTimeEquals(presentedKey, key) ? .accepted : .refused("the API key is wrong")
        }
        if let identity = self.request.identity {
            return identity.scopes.contains(scope) ? .accepted : .forbidden("the token lacks the scope \(scope)")
        }
        if let authorization, authorization.lowercased().hasPrefix("bearer "), self.relay.authenticator.acceptsTokens {
            return .verify(String(authorization.dropFirst("bearer ".count)))
        }
        return .refused("send an API key (X-API-Key) or a bearer token with the scope \(scope)")
    }
}
