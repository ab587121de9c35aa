import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// The fan-out path over real sockets: bursts coalesced into one write per connection still
/// arrive as the frames they were, in order, and a channel's subscriber array stays right while
/// clients subscribe, unsubscribe and disconnect under a stream of publications.
@Suite("Fluxer Relay: fan-out over sockets", .timeLimit(.minutes(5)))
struct RelayFanOutLiveTests {
    @Test(
        "a burst delivered in one tick reaches JSON and Protobuf clients (websockets) as one message per push, in order"
    )
    func burstKeepsFrames() async throws {
        let count = 120
        try await RelayGateway.with { gateway in
            let outcome = try await RelayAPITests.scenario(
                "burst",
                [RelayAPITests.urls(gateway).websocket, try RelayTokens.mint("burst"), "slow:burst", String(count)]
            )
            #expect(outcome["text_subscribed"] as? Bool == true, "\(outcome)")
            #expect(outcome["binary_subscribed"] as? Bool == true, "\(outcome)")
            #expect(outcome["published"] as? Int == count, "\(outcome)")
            for format in ["text", "binary"] {
                let received = try #require(outcome[format] as? [String: Any], "\(outcome)")
                #expect(received["pushes_per_message"] as? [Int] == [1], "\(format): \(received)")
                #expect(received["messages"] as? Int == count, "\(format)")
                #expect(received["offsets"] as? [Int] == Array(1...count), "\(format)")
                #expect(received["n"] as? [Int] == Array(0..<count), "\(format)")
                #expect(received["pads_ok"] as? Bool == true, "\(format)")
            }
        }
    }

    /// A subscriber and, per subscription it had, the channel offset its subscribe reply gave
    /// and the publication offsets it received, in order of arrival.
    final class Subscriber {
        let client: RelayTestClient
        var periods: [(start: Int, offsets: [Int])] = []

        init(_ client: RelayTestClient) { self.client = client }

        func subscribe(_ channel: String) async throws {
            let reply = try await self.client.call("subscribe", ["channel": channel])
            let start = try #require(result(reply, "subscribe")?["offset"] as? Int, "\(reply)")
            self.periods.append((start, []))
        }

        /// Publications received so far go to the current subscription.
        func takePublications() {
            let offsets = self.client.takePushes().compactMap {
                (($0["push"] as? [String: Any])?["pub"] as? [String: Any])?["offset"] as? Int
            }
            self.periods[self.periods.count - 1].offsets += offsets
        }

        func unsubscribe(_ channel: String) async throws {
            _ = try await self.client.call("unsubscribe", ["channel": channel])
            self.takePublications()  // The reply comes after every push written before it.
        }

        /// Waits for the publication at `offset` on the current subscription.
        func receive(through offset: Int) async throws {
            self.takePublications()
            while self.periods[self.periods.count - 1].offsets.last.map({ $0 < offset }) ?? true {
                let publication = try await self.client.nextPublication()
                self.periods[self.periods.count - 1].offsets.append(try #require(publication["offset"] as? Int))
            }
        }
    }

    @Test(
        "subscribers come and go while publications stream: each gets every publication once, in order, while subscribed"
    )
    func subscribersComeAndGo() async throws {
        try await RelayGateway.with { gateway in
            let channel = "slow:churn"
            let token = try RelayTokens.mint("churn")
            let (publisher, _) = try await RelayGateway.connect(gateway, token: token)
            func newSubscriber() async throws -> Subscriber {
                let subscriber = Subscriber(try await RelayGateway.connect(gateway, token: token).client)
                try await subscriber.subscribe(channel)
                return subscriber
            }
            var stayers: [Subscriber] = []
            var movers: [Subscriber] = []
            var visitors: [Subscriber] = []
            for _ in 0..<4 {
                stayers.append(try await newSubscriber())
                movers.append(try await newSubscriber())
                visitors.append(try await newSubscriber())
            }
            let rounds = 12
            for round in 0..<rounds {
                // Three publications in one frame, then the churn: they race on the relay's loops.
                publisher.send(
                    (0..<3).map { _ in #"{"publish":{"channel":"\#(channel)","data":{"round":\#(round)}}}"# }
                        .joined(separator: "\n")
                )
                let mover = movers[round % movers.count]
                try await mover.unsubscribe(channel)
                try await mover.subscribe(channel)
                // A visitor leaves (its socket closed) and a new one arrives.
                visitors.removeFirst().client.close()
                visitors.append(try await newSubscriber())
            }
            let last = try await publisher.call("publish", ["channel": channel, "data": ["last": true]])
            #expect(result(last, "publish") != nil, "\(last)")
            let lastOffset = 3 * rounds + 1

            let subscribed = stayers.count + movers.count + visitors.count
            let stats = try await RelayGateway.waitForStats(gateway) { stats in
                ((stats["namespaces"] as? [String: Any])?["slow"] as? [String: Any])?["subscriptions"] as? Int
                    == subscribed
            }
            #expect(
                ((stats["namespaces"] as? [String: Any])?["slow"] as? [String: Any])?["subscriptions"] as? Int
                    == subscribed,
                "\(stats)"
            )
            for subscriber in stayers + movers + visitors {
                try await subscriber.receive(through: lastOffset)
                // Every subscription got each publication after its position once, in order, with
                // nothing skipped; the current one up to the last.
                for (index, period) in subscriber.periods.enumerated() {
                    let end = index == subscriber.periods.count - 1 ? lastOffset : period.offsets.last ?? period.start
                    #expect(period.offsets == Array(stride(from: period.start + 1, through: end, by: 1)), "\(period)")
                }
                subscriber.client.close()
            }
            #expect(stayers.allSatisfy { $0.periods.count == 1 && $0.periods[0].start == 0 })
            publisher.close()
        }
    }
}
