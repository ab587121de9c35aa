import NIOCore
import Testing

@testable import FluxerRelayPlugin

/// The Protobuf format's length prefixes, at their edges.
@Suite("Relay Protobuf framing")
struct ProtobufFramingTests {
    static func split(_ bytes: [UInt8]) -> Result<[[UInt8]], ProtobufFraming.MalformedFrame> {
        Result { () throws(ProtobufFraming.MalformedFrame) in try ProtobufFraming.split(ByteBuffer(bytes: bytes)) }
    }

    @Test("messages split by their varint lengths; a 10th length byte that overflows 64 bits is refused")
    func varintEdges() throws {
        #expect(try Self.split([0x02, 0xAA, 0xBB, 0x00, 0x01, 0xCC]).get() == [[0xAA, 0xBB], [], [0xCC]])
        // 2^64 written in ten bytes: read as 0 before the fix (an empty command, no close).
        let overflow: [UInt8] = Array(repeating: 0x80, count: 9) + [0x02]
        #expect(throws: ProtobufFraming.MalformedFrame.self) { try Self.split(overflow).get() }
        // 2^63 fits in 64 bits: refused only because the frame is shorter than that.
        let largest: [UInt8] = Array(repeating: 0x80, count: 9) + [0x01]
        if case .failure(let error) = Self.split(largest) {
            #expect(error.description.contains("says 9223372036854775808 bytes"), "\(error)")
        } else {
            Issue.record("a 2^63-byte message in a 10-byte frame was accepted")
        }
        #expect(throws: ProtobufFraming.MalformedFrame.self) { try Self.split(Array(repeating: 0x80, count: 11)).get() }
        #expect(throws: ProtobufFraming.MalformedFrame.self) { try Self.split([0x85]).get() }
    }
}
