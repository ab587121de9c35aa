import EthicalGateway
import NIOCore

/// The one way the relay checks a token presented inside its own protocols: the `connect` and
/// `refresh` commands of the WebSocket API and bearer tokens of the HTTP API, all verified
/// against the relay's `issuers`. Each caller turns the outcome into its protocol's answer.
struct RelayAuthenticator: Sendable {
    /// Why a token was not accepted.
    enum Failure: Error {
        /// The relay takes no tokens of its own (no `issuers`, or the gateway has none).
        case notAccepted
        /// The token was checked and refused (expired, bad signature, wrong audience…).
        case refused(TokenRefusal)
        /// Verification could not complete (keys could not be fetched, say).
        case failed(any Error)
    }

    let verifier: TokenVerifier?
    let issuers: [String]

    /// Whether tokens can be verified here at all.
    var acceptsTokens: Bool { self.verifier != nil && !self.issuers.isEmpty }

    /// Verifies `token`; the future always succeeds, with the identity or why not, on `eventLoop`.
    func verify(_ token: String, on eventLoop: any EventLoop) -> EventLoopFuture<Result<VerifiedIdentity, Failure>> {
        guard let verifier = self.verifier, !self.issuers.isEmpty else {
            return eventLoop.makeSucceededFuture(.failure(.notAccepted))
        }
        return verifier.verify(token, issuers: self.issuers, on: eventLoop).map { outcome in
            outcome.mapError { Failure.refused($0) }
        }.flatMapErrorThrowing { error in
            .failure(.failed(error))
        }
    }
}
