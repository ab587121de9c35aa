import Logging
import Testing

@testable import EthicalGateway

/// The text log writes what clients control (a token's `kid`, a path) with control characters
/// escaped, so no client can add a line that reads like the gateway's own.
@Suite("Text log: control characters escaped")
struct TextLogHandlerTests {
    @Test("newlines, carriage returns, tabs, ESC and DEL become escapes; other text is unchanged")
    func escapes() {
        #expect(TextLogHandler.escaped("k1\n2026-11-30 info: admin login ok") == "k1\\n2026-11-30 info: admin login ok")
        #expect(TextLogHandler.escaped("a\rb\tc\u{1B}[31md\u{7F}") == "a\\rb\\tc\\u{1B}[31md\\u{7F}")
        #expect(TextLogHandler.escaped("plain café ✓") == "plain café ✓")
        #expect(!TextLogHandler.needsEscaping("plain café ✓"))
    }

    @Test("metadata values are escaped, nested ones too; the handler's own metadata as it is set")
    func metadata() {
        let value: Logger.Metadata.Value = .dictionary([
            "reason": .string("unknown key id 'x\ny'"),
            "list": .array([.stringConvertible("a\nb"), .string("ok")]),
        ])
        guard case .dictionary(let escaped) = TextLogHandler.escaped(value) else {
            Issue.record("not a dictionary")
            return
        }
        #expect(escaped["reason"] == .string("unknown key id 'x\\ny'"))
        #expect(escaped["list"] == .array([.string("a\\nb"), .string("ok")]))
        var handler = TextLogHandler(label: "test")
        handler[metadataKey: "path"] = .string("/a\r\nb")
        #expect(handler[metadataKey: "path"] == .string("/a\\r\\nb"))
        handler.metadata = ["kid": .string("k\n")]
        #expect(handler.metadata["kid"] == .string("k\\n"))
    }
}
