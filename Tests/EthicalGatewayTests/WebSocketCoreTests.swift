import NIOCore
import NIOHTTP1
import NIOWebSocket
import Testing
import WebSocketCore

/// The WebSocket layer's pure parts: UTF-8 validation piece by piece, permessage-deflate
/// negotiation, and message assembly from frames (fragments, control frames, limits, inflating).
@Suite("WebSocket layer: validation, negotiation, assembly")
struct WebSocketCoreTests {
    static func validate(_ pieces: [[UInt8]]) -> Bool {
        var validator = UTF8Validator()
        for piece in pieces {
            guard piece.withUnsafeBytes({ validator.feed($0) }) else { return false }
        }
        return validator.isComplete
    }

    @Test("over HTTP/2 the handshake needs no key, answers 200 without Accept, and negotiates as on HTTP/1.1")
    func http2Handshake() throws {
        var head = HTTPRequestHead(version: .http2, method: .GET, uri: "/ws")
        head.headers.add(name: "upgrade", value: "websocket")
        head.headers.add(name: "connection", value: "upgrade")
        head.headers.add(name: "sec-websocket-version", value: "13")
        head.headers.add(name: "sec-websocket-protocol", value: "other, centrifuge-protobuf")
        head.headers.add(name: "sec-websocket-extensions", value: "permessage-deflate; client_max_window_bits")
        guard
            case .accept(let accepted) = WebSocketHandshake.evaluate(
                head,
                subprotocols: ["centrifuge-json", "centrifuge-protobuf"],
                permessageDeflate: true
            )
        else {
            Issue.record("an HTTP/2 opening without a key was refused")
            return
        }
        #expect(accepted.head.status == .ok)
        #expect(accepted.head.headers["sec-websocket-accept"].isEmpty)
        #expect(accepted.head.headers["upgrade"].isEmpty && accepted.head.headers["connection"].isEmpty)
        #expect(accepted.subprotocol == "centrifuge-protobuf")
        #expect(accepted.head.headers.first(name: "sec-websocket-protocol") == "centrifuge-protobuf")
        #expect(accepted.deflate != nil)
        // The version is checked on HTTP/2 too (RFC 8441 section 5).
        var oldVersion = head
        oldVersion.headers.replaceOrAdd(name: "sec-websocket-version", value: "8")
        guard case .refuse(.upgradeRequired, _) = WebSocketHandshake.evaluate(oldVersion, permessageDeflate: false)
        else {
            Issue.record("version 8 accepted over HTTP/2")
            return
        }
        // A plain HTTP/2 GET is told how to open a WebSocket there.
        let plain = HTTPRequestHead(version: .http2, method: .GET, uri: "/ws")
        guard case .refuse(.badRequest, let detail) = WebSocketHandshake.evaluate(plain, permessageDeflate: false)
        else {
            Issue.record("a plain HTTP/2 GET was not refused with 400")
            return
        }
        #expect(detail.contains("RFC 8441"))
        // HTTP/1.1 still needs its key.
        var http1 = head
        http1.version = .http1_1
        guard case .refuse(.badRequest, _) = WebSocketHandshake.evaluate(http1, permessageDeflate: false) else {
            Issue.record("an HTTP/1.1 opening without a key was accepted")
            return
        }
    }

    @Test("UTF-8: valid text passes however it is split; each kind of invalid sequence fails")
    func utf8() {
        let text = Array("ASCII and more: é € 𝄞 \u{10FFFF} \u{D7FF} \u{E000}".utf8)
        for split in 0...text.count {
            #expect(Self.validate([Array(text[..<split]), Array(text[split...])]), "split at \(split)")
        }
        let invalid: [[UInt8]] = [
            [0xC0, 0xAF],  // overlong "/"
            [0xE0, 0x80, 0xAF],  // overlong, three bytes
            [0xED, 0xA0, 0x80],  // a surrogate
            [0xF4, 0x90, 0x80, 0x80],  // past U+10FFFF
            [0xF5, 0x80, 0x80, 0x80],
            [0x80],  // a lone continuation byte
            [0xCE, 0xBA, 0xE1],  // a character cut at the end
            Array("0123456789abcdef".utf8) + [0xFF],  // after an ASCII run
        ]
        for bytes in invalid {
            #expect(!Self.validate([bytes]), "\(bytes)")
        }
        // Fails at the first impossible byte, before the message ends.
        var validator = UTF8Validator()
        #expect(![UInt8]([0x61, 0xC0]).withUnsafeBytes { validator.feed($0) })
    }

    @Test("permessage-deflate: the first acceptable offer wins; parameters answered per RFC 7692")
    func negotiation() throws {
        let plain = try #require(
            PerMessageDeflate.negotiate(offers: ["permessage-deflate"], requireClientNoContextTakeover: false)
        )
        #expect(plain.responseHeaderValue == "permessage-deflate")
        let all = try #require(
            PerMessageDeflate.negotiate(
                offers: [
                    "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=16, "
                        + "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                        + "server_max_window_bits=10; client_max_window_bits"
                ],
                requireClientNoContextTakeover: false
            )
        )
        #expect(
            all.responseHeaderValue
                == "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"
        )
        let forced = try #require(
            PerMessageDeflate.negotiate(
                offers: ["permessage-deflate; client_max_window_bits=9"],
                requireClientNoContextTakeover: true
            )
        )
        #expect(forced.responseHeaderValue == "permessage-deflate; client_no_context_takeover")
        for declined in [
            "permessage-deflate; unknown", "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_max_window_bits=7", "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_no_context_takeover=1", "deflate-frame",
        ] {
            #expect(
                PerMessageDeflate.negotiate(offers: [declined], requireClientNoContextTakeover: false) == nil,
                "\(declined)"
            )
        }
    }

    static let key: WebSocketMaskingKey = [1, 2, 3, 4]

    static func frame(
        _ opcode: WebSocketOpcode,
        _ bytes: [UInt8],
        fin: Bool = true,
        rsv1: Bool = false,
        masked: Bool = true
    ) -> WebSocketFrame {
        var data = ByteBuffer(bytes: bytes)
        if masked { data.webSocketMask(Self.key) }
        return WebSocketFrame(fin: fin, rsv1: rsv1, opcode: opcode, maskKey: masked ? Self.key : nil, data: data)
    }

    static func describe(_ event: WebSocketMessageAssembler.Event) -> String {
        switch event {
        case .none: return "none"
        case .message(let message): return "\(message.kind):\(String(buffer: message.data))"
        case .ping(let data): return "ping:\(String(buffer: data))"
        case .pong(let data): return "pong:\(String(buffer: data))"
        case .close(let code, let reason): return "close:\(code.map(String.init) ?? "-"):\(reason)"
        case .fail(let code, _): return "fail:\(UInt16(webSocketErrorCode: code))"
        }
    }

    static func run(
        _ frames: [WebSocketFrame],
        maxMessageBytes: Int = 1024,
        deflate: PerMessageDeflate? = nil
    ) -> [String] {
        var assembler = WebSocketMessageAssembler(maxMessageBytes: maxMessageBytes, deflate: deflate)
        // The handler fails the connection at the first failure: nothing after it is read.
        var events: [String] = []
        for frame in frames {
            events.append(Self.describe(assembler.receive(frame, allocator: ByteBufferAllocator())))
            if events.last?.hasPrefix("fail") == true { break }
        }
        return events
    }

    @Test("fragments join into one message, with control frames between them")
    func fragments() {
        #expect(
            Self.run([
                Self.frame(.text, Array("frag".utf8), fin: false), Self.frame(.ping, Array("p".utf8)),
                Self.frame(.continuation, Array("men".utf8), fin: false), Self.frame(.pong, []),
                Self.frame(.continuation, Array("ted".utf8)), Self.frame(.binary, [0x41], fin: false),
                Self.frame(.continuation, [0x42]),
            ]) == ["none", "ping:p", "none", "pong:", "text:fragmented", "none", "binary:AB"]
        )
    }

    @Test("protocol errors fail with the RFC's codes: 1002, 1007, 1009")
    func failures() {
        #expect(Self.run([Self.frame(.text, Array("x".utf8), masked: false)]) == ["fail:1002"])
        #expect(Self.run([Self.frame(.continuation, [0x41])]) == ["fail:1002"])
        #expect(Self.run([Self.frame(.text, [0x41], fin: false), Self.frame(.text, [0x41])]) == ["none", "fail:1002"])
        #expect(Self.run([Self.frame(.text, [0x41], rsv1: true)]) == ["fail:1002"])
        #expect(Self.run([Self.frame(WebSocketOpcode(encodedWebSocketOpcode: 3)!, [])]) == ["fail:1002"])
        #expect(Self.run([Self.frame(.text, [0xC0, 0xAF])]) == ["fail:1007"])
        #expect(
            Self.run([Self.frame(.text, [0x41], fin: false), Self.frame(.continuation, [0xFF], fin: false)]) == [
                "none", "fail:1007",
            ]
        )
        #expect(
            Self.run([Self.frame(.text, [0xE2], fin: false), Self.frame(.continuation, [0x82])]) == [
                "none", "fail:1007",
            ]
        )
        #expect(
            Self.run([
                Self.frame(.binary, [UInt8](repeating: 0, count: 600), fin: false),
                Self.frame(.continuation, [UInt8](repeating: 0, count: 600)),
            ]) == ["none", "fail:1009"]
        )
        #expect(Self.run([Self.frame(.connectionClose, [0x03])]) == ["fail:1002"])
        #expect(Self.run([Self.frame(.connectionClose, [0x03, 0xED])]) == ["fail:1002"])  // 1005
        #expect(Self.run([Self.frame(.connectionClose, [0x03, 0xE8, 0xC0])]) == ["fail:1007"])
        #expect(Self.run([Self.frame(.connectionClose, [0x0F, 0xA1] + Array("bye".utf8))]) == ["close:4001:bye"])
        #expect(Self.run([Self.frame(.connectionClose, [])]) == ["close:-:"])
    }

    @Test("compressed messages inflate, fragmented or whole, with and without context takeover, within the limit")
    func deflate() {
        let text = String(repeating: "compress me, compress me again; ", count: 40)
        for takeover in [true, false] {
            let negotiated = PerMessageDeflate(serverNoContextTakeover: !takeover, clientNoContextTakeover: !takeover)
            let compressor = DeflateCompressor(windowBits: 15, noContextTakeover: !takeover)
            var frames: [WebSocketFrame] = []
            for _ in 0..<3 {
                let compressed = Array(
                    compressor.compress(ByteBuffer(string: text), allocator: ByteBufferAllocator()).readableBytesView
                )
                let half = compressed.count / 2
                frames.append(Self.frame(.text, Array(compressed[..<half]), fin: false, rsv1: true))
                frames.append(Self.frame(.continuation, Array(compressed[half...])))
            }
            #expect(
                Self.run(frames, maxMessageBytes: 4096, deflate: negotiated).filter { $0 != "none" }
                    == Array(repeating: "text:\(text)", count: 3)
            )
            #expect(
                Self.run(frames, maxMessageBytes: 1000, deflate: negotiated).filter { $0 != "none" } == ["fail:1009"]
            )
        }
        // An 8-bit window: zlib cannot compress with it, so the compressor uses Huffman coding only.
        let small = DeflateCompressor(windowBits: 8, noContextTakeover: false)
        let compressed = Array(
            small.compress(ByteBuffer(string: text), allocator: ByteBufferAllocator()).readableBytesView
        )
        #expect(
            Self.run([Self.frame(.text, compressed, rsv1: true)], maxMessageBytes: 4096, deflate: PerMessageDeflate())
                == ["text:\(text)"]
        )
        #expect(
            Self.run([Self.frame(.binary, [0xFF, 0xFF, 0xFF], rsv1: true)], deflate: PerMessageDeflate()) == [
                "fail:1002"
            ]
        )
    }
}
