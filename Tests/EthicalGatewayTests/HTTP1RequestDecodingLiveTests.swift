import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// The gateway's own HTTP/1.1 request decoding over a real socket, where a unit test cannot
/// show it: what TCP delivers in one segment.
@Suite("HTTP/1.1 request decoding, live")
struct HTTP1RequestDecodingLiveTests {
    @Test(
        "a WebSocket frame sent in the same write as the upgrade request reaches the WebSocket (NIO's decoder dropped it)"
    )
    func frameBehindUpgradeHead() async throws {
        let config = """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "routes": [ { "name": "echo", "match": { "pathPrefix": "/echo" }, "backend": "echo" } ],
              "backends": { "echo": { "plugin": "websocket-echo", "config": {} } } }
            """
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            let connection = try RawConnection(port: gateway.port("http"))
            let handshake =
                "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            // A masked text frame, FIN set, "early bytes" (RFC 6455 5.2).
            let payload = Array("early bytes".utf8)
            let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
            var frame: [UInt8] = [0x81, 0x80 | UInt8(payload.count)] + mask
            for (index, byte) in payload.enumerated() { frame.append(byte ^ mask[index % 4]) }
            #expect(connection.send(bytes: Array(handshake.utf8) + frame))
            let answer = await connection.read(until: "early bytes", timeout: 10)
            #expect(answer.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"), "\(answer.prefix(200))")
            #expect(answer.contains("early bytes"), "the frame behind the head is echoed: \(answer.debugDescription)")
        }
    }
}
