import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// The relay's Protobuf format (`centrifuge-protobuf`, binary frames of length-delimited
/// messages) with independent clients: centrifuge-python with `use_protobuf=True` in the
/// scenarios its JSON runs also go through, a JSON and a Protobuf client on one channel, and
/// frames built by hand from the protocol's generated Python messages.
@Suite("Fluxer Relay: Protobuf format", .timeLimit(.minutes(5)))
struct RelayProtobufTests {
    static func scenario(protobuf: Bool, _ name: String, _ arguments: [String]) async throws -> [String: Any] {
        try await RelayAPITests.scenario(protobuf ? "--protobuf" : name, protobuf ? [name] + arguments : arguments)
    }

    @Test("centrifuge-python (Protobuf) connects, subscribes, publishes, reads presence and history; rpc is not found")
    func pythonRoundTrip() async throws {
        try await RelayGateway.with { gateway in
            let outcome = try await Self.scenario(
                protobuf: true,
                "roundtrip",
                [RelayAPITests.urls(gateway).websocket, try RelayTokens.mint("alice")]
            )
            let data = try #require(outcome["data"] as? [String: Any], "\(outcome)")
            #expect(data["text"] as? String == "hello")
            // The data's bytes went through unchanged: a 20-digit number survives.
            #expect((data["big"] as? NSNumber)?.stringValue == "12345678901234567890")
            #expect(outcome["offset"] as? Int == 1)
            #expect(outcome["presence_users"] as? [String] == ["alice"])
            #expect(outcome["num_clients"] as? Int == 1)
            #expect(outcome["history_offsets"] as? [Int] == [1])
            #expect(outcome["rpc_error"] as? Int == 104)
        }
    }

    @Test("centrifuge-python (Protobuf) recovers what was published while the server had dropped it")
    func pythonRecovery() async throws {
        try await RelayGateway.with { gateway in
            let urls = RelayAPITests.urls(gateway)
            let outcome = try await Self.scenario(
                protobuf: true,
                "recovery",
                [urls.websocket, try RelayTokens.mint("rita"), urls.api, RelayGateway.apiKey, "rita"]
            )
            #expect(outcome["received"] as? [Int] == Array(1...8), "\(outcome)")
            #expect(outcome["extra"] as? Int == 0)
            #expect(outcome["first_recoverable"] as? Bool == true)
            #expect(outcome["second_was_recovering"] as? Bool == true)
            #expect(outcome["second_recovered"] as? Bool == true)
        }
    }

    @Test(
        "centrifuge-python refreshes its connection token in band and outlives the first token",
        arguments: [false, true]
    )
    func pythonTokenRefresh(protobuf: Bool) async throws {
        // The first token must outlive the Python start (seconds on a loaded machine): the SDK
        // refreshes when the connect reply's ttl ends, the relay closes `grace` seconds later.
        // With the whole suite loading two cores, 3 s of grace once ended the connection (3005)
        // before the refresh took effect.
        let shortTTL = 8
        let grace = 8
        try await RelayGateway.with(relay: #""pongTimeoutSeconds": \#(grace), "#.appending(RelayGateway.namespaces)) {
            gateway in
            let outcome = try await Self.scenario(
                protobuf: protobuf,
                "refresh",
                [
                    RelayAPITests.urls(gateway).websocket, try RelayTokens.mint("rory", ttl: Double(shortTTL)),
                    try RelayTokens.mint("rory", ttl: 120), String(shortTTL), String(grace),
                ]
            )
            // Refreshed before the relay would have closed it (ttl + grace); a loaded CI machine
            // refreshed 1.5 s after the ttl, which the SDK's own timers allow.
            #expect((outcome["refreshed_after"] as? Double ?? 99) < Double(shortTTL + grace), "\(outcome)")
            #expect(outcome["state_after_expiry"] as? String == "connected", "\(outcome)")
            // Only the first move to connecting (0: connect called): never dropped with 3005.
            #expect(outcome["state_changes"] as? [Int] == [0], "\(outcome)")
            #expect(outcome["num_clients"] as? Int == 1)
        }
    }

    @Test("a JSON and a Protobuf subscriber on one channel both receive every publication; non-JSON bytes are refused")
    func mixedFormats() async throws {
        try await RelayGateway.with { gateway in
            let urls = RelayAPITests.urls(gateway)
            let outcome = try await RelayAPITests.scenario(
                "mixed",
                [urls.websocket, try RelayTokens.mint("mia"), urls.api, RelayGateway.apiKey]
            )
            let received = try #require(outcome["received"] as? [String: [[String: Any]]], "\(outcome)")
            let expected = [[1, "api"], [2, "protobuf"], [3, "json"], [4, "api"]].map { "\($0)" }
            for format in ["json", "protobuf"] {
                let got = (received[format] ?? []).map { "\([$0["n"] as? Int ?? 0, $0["from"] as? String ?? ""])" }
                #expect(got == expected, "\(format): \(got)")
            }
            // The SDK hands JSON subscribers decoded values and Protobuf ones the bytes.
            let types = try #require(outcome["types"] as? [String: [String]])
            #expect(types["json"] == ["dict", "dict", "dict", "dict"])
            #expect(types["protobuf"] == ["bytes", "bytes", "bytes", "bytes"])
            #expect(outcome["refused_code"] as? Int == 107)
            #expect(outcome["history"] as? [Int] == [1, 2, 3, 4])
            let join = try #require(outcome["protobuf_saw_join_of"] as? [Any])
            #expect(join.first as? String == "mia")
            #expect(join.last as? Bool == true)
        }
    }

    @Test(
        "hand-built frames: several length-delimited commands in one binary frame, ?format=protobuf, a malformed frame closes with 3501"
    )
    func rawFrames() async throws {
        try await RelayGateway.with { gateway in
            let outcome = try await RelayAPITests.scenario(
                "raw-protobuf",
                [RelayAPITests.urls(gateway).websocket, try RelayTokens.mint("rae")]
            )
            #expect(outcome["subprotocol"] as? String == "centrifuge-protobuf", "\(outcome)")
            #expect(outcome["connect_client"] as? Bool == true)
            #expect(outcome["connect_ping"] as? Int == 25)
            #expect(outcome["subscribe_epoch"] as? Bool == true)
            #expect(outcome["published"] as? Bool == true)
            #expect(outcome["num_clients"] as? Int == 1)
            #expect(outcome["history"] as? [String] == [#"{"x":1}"#])
            #expect(outcome["push"] as? [String] == [#"{"x":1}"#])
            #expect(outcome["error_code"] as? Int == 102)
            let closed = try #require(outcome["malformed_close"] as? [Any])
            #expect(closed.first as? Int == 3501)
            #expect((closed.last as? String)?.contains("says 5 bytes; the frame has 1 left") == true, "\(closed)")
            #expect(outcome["query_subprotocol"] is NSNull)
            #expect(outcome["query_connect"] as? Bool == true)
            #expect(outcome["query_ping"] as? Bool == true)
        }
    }
}
