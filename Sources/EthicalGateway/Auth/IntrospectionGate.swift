import Crypto
import Foundation

/// Stands between requests and an issuer's introspection endpoint: concurrent requests with the
/// same token share one call, tokens the endpoint refused are refused again without a call for
/// a while, and at most a fixed number of calls are in flight. Without it, a client sending
/// random opaque tokens makes the gateway call the IdP once per request, as fast as it likes.
actor IntrospectionGate {
    typealias Outcome = Result<VerifiedToken, TokenRefusal>

    private let refusalSeconds: Double
    private let maxInFlight: Int
    /// Bound on remembered refusals; past it, the oldest half is forgotten.
    private let maxRefusals: Int
    private var inFlight: [SHA256Digest: Task<Outcome, Never>] = [:]
    private var refusals: [SHA256Digest: (expires: Double, refusal: TokenRefusal)] = [:]

    init(refusalSeconds: Double, maxInFlight: Int, maxRefusals: Int = 10_000) {
        self.refusalSeconds = refusalSeconds
        self.maxInFlight = maxInFlight
        self.maxRefusals = maxRefusals
    }

    /// How many calls are in flight (for tests and stats).
    var callsInFlight: Int { self.inFlight.count }

    /// The outcome for `token`: remembered, shared with a call in flight, or from a new `call`.
    func check(_ token: String, call: @escaping @Sendable () async -> Outcome) async -> Outcome {
        let key = SHA256.hash(data: Data(token.utf8))
        let now = Date().timeIntervalSince1970
        if let remembered = self.refusals[key] {
            if remembered.expires > now { return .failure(remembered.refusal) }
            self.refusals[key] = nil
        }
        if let running = self.inFlight[key] { return await running.value }
        guard self.inFlight.count < self.maxInFlight else {
            return .failure(TokenRefusal(.keysUnavailable, "too many tokens are being checked at the moment"))
        }
        let task = Task { await call() }
        self.inFlight[key] = task
        let outcome = await task.value
        self.inFlight[key] = nil
        // Only the endpoint's verdict is remembered; "cannot be checked now" is not a verdict.
        if case .failure(let refusal) = outcome, refusal.kind != .keysUnavailable, self.refusalSeconds > 0 {
            if self.refusals.count >= self.maxRefusals { self.forgetOldestRefusals() }
            self.refusals[key] = (now + self.refusalSeconds, refusal)
        }
        return outcome
    }

    private func forgetOldestRefusals() {
        let now = Date().timeIntervalSince1970
        self.refusals = self.refusals.filter { $0.value.expires > now }
        guard self.refusals.count >= self.maxRefusals else { return }
        let sorted = self.refusals.sorted { $0.value.expires < $1.value.expires }
        for (key, _) in sorted.prefix(self.refusals.count / 2) { self.refusals[key] = nil }
    }
}
