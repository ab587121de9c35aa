import Crypto
import Foundation
import NIOHTTP1

/// The server side of the RFC 6455 opening handshake.
enum WebSocketHandshake {
    /// The subprotocol of the protocol's JSON format, echoed when a client asks for it.
    static let jsonSubprotocol = "centrifuge-json"

    enum Outcome {
        /// The `101` head to send.
        case accept(HTTPResponseHead)
        /// Not a valid WebSocket request: the status and why.
        case refuse(HTTPResponseStatus, String)
    }

    static func evaluate(_ head: HTTPRequestHead) -> Outcome {
        let headers = head.headers
        guard head.method == .GET else { return .refuse(.methodNotAllowed, "a WebSocket handshake is a GET") }
        let upgrade = headers[canonicalForm: "upgrade"].map { $0.lowercased() }
        guard upgrade.contains("websocket") else {
            return .refuse(.upgradeRequired, "this endpoint speaks WebSocket: send Upgrade: websocket")
        }
        guard headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "upgrade" }) else {
            return .refuse(.badRequest, "a WebSocket handshake needs Connection: Upgrade")
        }
        guard headers.first(name: "sec-websocket-version") == "13" else {
            return .refuse(.upgradeRequired, "only WebSocket version 13 is supported")
        }
        guard let key = headers.first(name: "sec-websocket-key"),
            let decoded = Base64.decode(key.trimmingCharacters(in: .whitespaces)), decoded.count == 16
        else {
            return .refuse(.badRequest, "Sec-WebSocket-Key must be 16 bytes in base64")
        }
        var response = HTTPHeaders()
        response.add(name: "upgrade", value: "websocket")
        response.add(name: "connection", value: "upgrade")
        response.add(name: "sec-websocket-accept", value: Self.acceptValue(for: key))
        let requested = headers[canonicalForm: "sec-websocket-protocol"].map { $0.trimmingCharacters(in: .whitespaces) }
        if requested.contains(Self.jsonSubprotocol) {
            response.add(name: "sec-websocket-protocol", value: Self.jsonSubprotocol)
        } else if requested.contains("centrifuge-protobuf") {
            return .refuse(.badRequest, "the Protobuf format is not supported yet; use the JSON format")
        }
        return .accept(HTTPResponseHead(version: head.version, status: .switchingProtocols, headers: response))
    }

    /// `base64(SHA-1(key + GUID))`.
    static func acceptValue(for key: String) -> String {
        let digest = Insecure.SHA1.hash(data: Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        return Base64.encode(Array(digest))
    }
}

/// Standard base64 (RFC 4648 §4) for the handshake's two short values.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            var value: UInt32 = 0
            for (offset, byte) in chunk.enumerated() { value |= UInt32(byte) << (16 - 8 * offset) }
            for position in 0..<4 {
                if position <= chunk.count {
                    output.append(Self.alphabet[Int((value >> (18 - 6 * position)) & 0x3F)])
                } else {
                    output.append(UInt8(ascii: "="))
                }
            }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        var padding = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            guard padding == 0, let index = Self.alphabet.firstIndex(of: byte) else { return nil }
            values.append(UInt8(index))
        }
        guard (values.count + padding) % 4 == 0, padding <= 2 else { return nil }
        var output: [UInt8] = []
        var index = 0
        while index < values.count {
            let group = values[index..<min(index + 4, values.count)]
            var value: UInt32 = 0
            for (offset, sextet) in group.enumerated() { value |= UInt32(sextet) << (18 - 6 * offset) }
            for position in 0..<(group.count - 1) { output.append(UInt8((value >> (16 - 8 * position)) & 0xFF)) }
            index += 4
        }
        return output
    }
}
