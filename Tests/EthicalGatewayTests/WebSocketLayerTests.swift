import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// The WebSocket layer live, through the gateway, with clients that are not ours
/// (`Fixtures/websocket_layer_checks.py`: the `websockets` library and hand-built frames):
/// the `websocket-echo` backend and the relay, fragmented and compressed messages, the close
/// codes of protocol errors, and the relay's parameter checks and `history` paging.
@Suite("WebSocket layer: websocket-echo and the relay, live", .timeLimit(.minutes(5)))
struct WebSocketLayerTests {
    static let script = repositoryRoot.appendingPathComponent(
        "Tests/EthicalGatewayTests/Fixtures/websocket_layer_checks.py"
    )

    static func scenario(_ name: String, _ arguments: [String]) async throws -> [String: Any] {
        let output = try await ProcessRunner.run("python3", [Self.script.path, name] + arguments, timeout: 60)
        guard output.exitCode == 0,
            let object = try? JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any]
        else {
            throw RelayTestClientError(
                message:
                    "websocket_layer_checks.py \(name) failed (\(output.exitCode)): \(output.standardError.suffix(2000))"
            )
        }
        return object
    }

    static let echoConfig = """
        { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
          "routes": [ { "name": "echo", "match": { "pathPrefix": "/echo" }, "backend": "echo" },
                      { "name": "small", "match": { "pathPrefix": "/small" }, "backend": "small" } ],
          "backends": { "echo": { "plugin": "websocket-echo", "config": {} },
                        "small": { "plugin": "websocket-echo",
                                   "config": { "maxMessageBytes": 1024, "permessageDeflate": false } } } }
        """

    @Test("websocket-echo echoes fragmented text and binary, with permessage-deflate negotiated and without")
    func echoFragments() async throws {
        try await LiveGateway.with(config: Self.echoConfig, registry: gatewayRegistry) { gateway in
            let outcome = try await Self.scenario("echo", ["ws://127.0.0.1:\(gateway.port("http"))/echo"])
            #expect(outcome["deflate_extensions"] as? String == "permessage-deflate")
            #expect(outcome["plain_extensions"] is NSNull)
            for key in ["deflate", "plain"] {
                let result = try #require(outcome[key] as? [String: Any], "\(outcome)")
                #expect(result["text"] as? String == "héllo wörld, fragmented")
                #expect(result["binary"] as? [Int] == [0, 1, 2, 255])
                #expect(result["big_ok"] as? Bool == true)
            }
        }
    }

    @Test(
        "hand-built frames: a ping between fragments, UTF-8 checked per fragment, protocol errors close with their codes"
    )
    func rawFrames() async throws {
        try await LiveGateway.with(config: Self.echoConfig, registry: gatewayRegistry) { gateway in
            let outcome = try await Self.scenario("raw", ["127.0.0.1", "\(gateway.port("http"))", "/small"])
            #expect(outcome["status"] as? Int == 101)
            let pingBetween = try #require(outcome["ping_between_fragments"] as? [[Any]])
            #expect(pingBetween.map { "\($0[0]):\($0[1])" } == ["10:are you there", "1:Hello ✓"])
            #expect(outcome["invalid_utf8_fragment"] as? Int == 1007)
            let split = try #require(outcome["split_character"] as? [Any])
            #expect(split[1] as? String == "€")
            #expect(outcome["unmasked"] as? Int == 1002)
            #expect(outcome["over_limit"] as? Int == 1009)
            #expect(outcome["orphan_continuation"] as? Int == 1002)
            #expect(outcome["bad_close_code"] as? Int == 1002)
            #expect(outcome["clean_close"] as? Int == 4001)
        }
    }

    @Test(
        "the relay takes commands as fragmented (and compressed) messages; bad parameter types are 107 naming the field; history since + reverse pages back"
    )
    func relay() async throws {
        try await RelayGateway.with { gateway in
            let url = "wss://127.0.0.1:\(gateway.port("https"))/relay/connection/websocket"
            let outcome = try await Self.scenario("relay", [url, try RelayTokens.mint("frank")])
            #expect(outcome["deflate_extensions"] as? String == "permessage-deflate; client_no_context_takeover")
            #expect(outcome["plain_extensions"] is NSNull)
            for key in ["deflate", "plain"] {
                let result = try #require(outcome[key] as? [String: Any], "\(outcome)")
                #expect(result["connected"] as? Bool == true)
                #expect(result["subscribed"] as? Bool == true)
                #expect(result["ping"] as? Bool == true)
                #expect(result["published"] as? Bool == true)
                #expect((result["push_data"] as? [String: Any])?["n"] as? Int == 1)
            }
            let errors = try #require(outcome["errors"] as? [String: [String: Any]])
            let expected = [
                "history_limit": "history.limit", "subscribe_offset": "subscribe.offset",
                "subscribe_recover": "subscribe.recover", "history_since_offset": "history.since.offset",
            ]
            for (key, field) in expected {
                #expect(errors[key]?["code"] as? Int == 107, "\(key): \(errors[key] ?? [:])")
                #expect((errors[key]?["message"] as? String)?.contains(field) == true, "\(key): \(errors[key] ?? [:])")
            }
            #expect(outcome["subscribe_after_errors"] as? Bool == true)
            let history = try #require(outcome["history"] as? [String: Any])
            #expect(history["reverse_before_4"] as? [Int] == [3, 2, 1])
            #expect(history["reverse_before_4_limit_2"] as? [Int] == [3, 2])
            #expect(history["after_2"] as? [Int] == [3, 4, 5])
            #expect(history["newest_2"] as? [Int] == [5, 4])
            #expect(history["reverse_wrong_epoch"] as? Int == 112)
        }
    }

    @Test("permessageDeflate: false declines a client's offer, on websocket-echo and on the relay")
    func deflateOff() async throws {
        try await LiveGateway.with(config: Self.echoConfig, registry: gatewayRegistry) { gateway in
            let small = try await Self.scenario("extensions", ["ws://127.0.0.1:\(gateway.port("http"))/small"])
            #expect(small["extensions"] is NSNull, "\(small)")
            #expect(small["reply"] as? String == "still echoed")
        }
        try await RelayGateway.with(relay: RelayGateway.namespaces + #", "permessageDeflate": false"#) { gateway in
            let url = "wss://127.0.0.1:\(gateway.port("https"))/relay/connection/websocket"
            let relay = try await Self.scenario("extensions", [url])
            #expect(relay["extensions"] is NSNull, "\(relay)")
        }
    }
}
