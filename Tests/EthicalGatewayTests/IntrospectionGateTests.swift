import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import EthicalGateway

@Suite("Introspection calls are shared, remembered when refused, and bounded")
struct IntrospectionGateTests {
    static let inactive = TokenRefusal.invalid(.malformed, "the token is not active")

    @Test("a refused token is refused again without a call until the refusal expires")
    func refusalIsRemembered() async {
        let gate = IntrospectionGate(refusalSeconds: 60, maxInFlight: 4)
        let calls = NIOLockedValueBox(0)
        for _ in 0..<5 {
            let outcome = await gate.check("opaque-1") {
                calls.withLockedValue { $0 += 1 }
                return .failure(Self.inactive)
            }
            #expect(outcome.failureValue == Self.inactive)
        }
        #expect(calls.withLockedValue { $0 } == 1)
        // "Cannot be checked now" is not a verdict: it is asked again.
        for _ in 0..<2 {
            _ = await gate.check("opaque-2") {
                calls.withLockedValue { $0 += 1 }
                return .failure(TokenRefusal(.keysUnavailable, "down"))
            }
        }
        #expect(calls.withLockedValue { $0 } == 3)
    }

    @Test("concurrent checks of one token share a call; distinct tokens past the bound get 'unavailable'")
    func sharedAndBounded() async {
        let gate = IntrospectionGate(refusalSeconds: 0, maxInFlight: 2)
        let calls = NIOLockedValueBox(0)
        let released = NIOLockedValueBox(false)
        let slowCall: @Sendable () async -> IntrospectionGate.Outcome = {
            calls.withLockedValue { $0 += 1 }
            for _ in 0..<1_000 where !released.withLockedValue({ $0 }) { try? await Task.sleep(for: .milliseconds(5)) }
            return .failure(Self.inactive)
        }
        await withTaskGroup(of: IntrospectionGate.Outcome.self) { group in
            for _ in 0..<10 { group.addTask { await gate.check("same", call: slowCall) } }
            group.addTask { await gate.check("other", call: slowCall) }
            // Wait (bounded) until both calls have started, then try a third distinct token.
            for _ in 0..<500 where await gate.callsInFlight < 2 { try? await Task.sleep(for: .milliseconds(10)) }
            let third = await gate.check("third") { .failure(Self.inactive) }
            #expect(third.failureValue?.category == .unavailable)
            released.withLockedValue { $0 = true }
            for await outcome in group { #expect(outcome.failureValue == Self.inactive) }
        }
        #expect(calls.withLockedValue { $0 } == 2)
    }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}
