import NIOCore
import Testing

@testable import FluxerRelayPlugin

/// What the uni-directional transports take from the relay's frames and requests: the `Push`
/// inside a WebSocket frame, and the `cf_connect` query parameter.
@Suite("Fluxer Relay: uni-directional framing")
struct RelayUniFramingTests {
    @Test(
        "a push framed for WebSocket gives the Push object itself, whatever the frame header's length",
        arguments: [10, 200, 70_000]
    )
    func pushUnwrapped(size: Int) {
        let text = String(repeating: "x", count: size)
        let push = Push.encode(channel: "news:a", kind: "pub", body: .object(["data": .string(text)]))
        let message = Push.unidirectionalMessage(of: Push.frame(push))
        #expect(String(buffer: message) == #"{"channel":"news:a","pub":{"data":""# + text + #""}}"#)
    }

    @Test("a ping stays {}; connect and disconnect pushes lose their wrapper")
    func otherMessages() {
        #expect(String(buffer: Push.unidirectionalMessage(of: Push.ping)) == "{}")
        let connect = Push.frame(Push.connect(.object(["client": .string("c1")])))
        #expect(String(buffer: Push.unidirectionalMessage(of: connect)) == #"{"connect":{"client":"c1"}}"#)
        let disconnect = Push.frame(Push.disconnect(.shutdown))
        #expect(
            String(buffer: Push.unidirectionalMessage(of: disconnect))
                == #"{"disconnect":{"code":3001,"reason":"shutdown"}}"#
        )
    }

    @Test("cf_connect is form-decoded; absent is nil, invalid percent-encoding is .some(nil)")
    func queryValue() {
        #expect(
            UniStreamRequest.queryValue("cf_connect", in: "a=1&cf_connect=%7B%22token%22%3A%22t+u%22%7D")
                == "{\"token\":\"t u\"}"
        )
        #expect(UniStreamRequest.queryValue("cf_connect", in: "a=1") == String??.none)
        #expect(UniStreamRequest.queryValue("cf_connect", in: nil) == String??.none)
        #expect(UniStreamRequest.queryValue("cf_connect", in: "cf_connect=%zz") == .some(nil))
        #expect(UniStreamRequest.queryValue("cf_connect", in: "cf_connect") == "")
    }
}
