import Foundation
import HTTP1Codec
import HTTP1Differential
import Testing

/// The short, deterministic part of the differential fuzzing (the long runs are
/// `scripts/fuzz-http1.sh`): every input in the checked-in corpus, and a fixed number of seeded
/// mutations of them, read the same by our parser and by NIO's llhttp, or refused by ours.
@Suite("Differential check against NIO's llhttp: corpus replay and seeded mutations")
struct HTTP1DifferentialTests {
    static let corpusDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Corpus")

    static func corpus() throws -> [(name: String, bytes: [UInt8])] {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.corpusDirectory.path).sorted()
        return try names.map { name in
            (name, Array(try Data(contentsOf: Self.corpusDirectory.appendingPathComponent(name))))
        }
    }

    @Test("every corpus input: both read the same head, or ours refuses")
    func corpusReplay() throws {
        let corpus = try Self.corpus()
        #expect(corpus.count >= 100)
        var accepted = 0
        var refused = 0
        for (name, bytes) in corpus {
            switch HTTP1Differential.check(bytes) {
            case .mismatch(let difference):
                Issue.record("\(name): \(difference)")
            case .bothAccepted:
                accepted += 1
            case .oursRefused:
                refused += 1
            case .bothIncomplete:
                break
            }
        }
        // Not a vacuous run: the corpus holds both well-formed requests and attacks.
        #expect(accepted >= 40)
        #expect(refused >= 10)
    }

    @Test("seeded mutations of the corpus (bytes flipped, inserted from HTTP's delimiters, removed)")
    func mutations() throws {
        let corpus = try Self.corpus()
        var random = SplitMix64(seed: 0x5EED_1234)
        let dictionary: [[UInt8]] = [
            [13], [10], [13, 10], [32], [9], [58], [0], [44], [59], [127], [0xC3, 0xA9],
            Array("Content-Length: 5\r\n".utf8), Array("Transfer-Encoding: chunked\r\n".utf8),
            Array("Host: b\r\n".utf8), Array("Connection: close\r\n".utf8), Array(" HTTP/1.0".utf8),
        ]
        var outcomes: [String: Int] = [:]
        for _ in 0..<20000 {
            var bytes = corpus[Int(random.next() % UInt64(corpus.count))].bytes
            for _ in 0..<(1 + Int(random.next() % 3)) {
                let position = bytes.isEmpty ? 0 : Int(random.next() % UInt64(bytes.count))
                switch random.next() % 4 {
                case 0 where !bytes.isEmpty: bytes[position] = UInt8(truncatingIfNeeded: random.next())
                case 1:
                    bytes.insert(contentsOf: dictionary[Int(random.next() % UInt64(dictionary.count))], at: position)
                case 2 where !bytes.isEmpty: bytes.remove(at: position)
                default: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: position)
                }
            }
            let outcome = HTTP1Differential.check(bytes)
            switch outcome {
            case .mismatch(let difference):
                Issue.record("\(bytes.debugDescription): \(difference)")
                outcomes["mismatch", default: 0] += 1
            case .bothAccepted: outcomes["both accepted", default: 0] += 1
            case .oursRefused: outcomes["ours refused", default: 0] += 1
            case .bothIncomplete: outcomes["both incomplete", default: 0] += 1
            }
        }
        #expect(outcomes["both accepted", default: 0] >= 300, "\(outcomes)")
        #expect(outcomes["ours refused", default: 0] >= 300, "\(outcomes)")
    }
}

/// A small seeded generator, so the mutations are the same on every run.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
