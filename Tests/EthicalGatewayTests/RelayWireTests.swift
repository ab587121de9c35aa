@_spi(Benchmarks) import FluxerRelayPlugin
import NIOCore
import Testing

/// The relay's JSON codec: lossless numbers, strict syntax, escapes.
@Suite("Fluxer Relay: wire JSON")
struct RelayWireTests {
    @Test("numbers keep their text, so large integers and decimals pass through unchanged")
    func numbers() throws {
        let value = try WireJSON.parse(Array(#"{"big":12345678901234567890,"x":-0.5e-3,"n":[1,2]}"#.utf8))
        #expect(String(buffer: value.encoded) == #"{"big":12345678901234567890,"n":[1,2],"x":-0.5e-3}"#)
    }

    @Test("escapes and surrogate pairs decode, control characters are escaped again")
    func strings() throws {
        let value = try WireJSON.parse(Array(#"["a\"b\\c\n\u00e9\ud83d\ude00\u0001"]"#.utf8))
        #expect(value == .array([.string("a\"b\\c\n\u{e9}\u{1F600}\u{1}")]))
        #expect(String(buffer: value.encoded) == #"["a\"b\\c\n\#u{e9}\#u{1F600}\u0001"]"#)
    }

    @Test(
        "malformed input is refused with the byte offset",
        arguments: [
            "{", #"{"a":}"#, "[1,]", "01", "1.", "tru", #""\x""#, #""\ud800""#, "{} x", #"{"a" 1}"#,
            String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
        ]
    )
    func malformed(_ text: String) {
        #expect(throws: WireJSONError.self) { try WireJSON.parse(Array(text.utf8)) }
    }

    @Test("in-process fan-out (what the micro benchmark measures): one publication, one frame per subscriber")
    func fanOutProbe() throws {
        let probe = try RelayFanOutProbe(subscribers: 100)
        #expect(try probe.publish() == 100)
        #expect(try probe.publish() == 100)
    }
}
