import Foundation
import HTTP1Codec
import HTTP1Differential
import Testing

/// The short, deterministic part of the response differential fuzzing (the long runs are
/// `scripts/fuzz-http1.sh response`): every input of the checked-in response corpus, and a fixed
/// number of seeded mutations of them, read as answers to GETs and to HEADs, the same by our
/// decoder and by NIO's llhttp, or refused by ours.
@Suite("Differential check of responses against NIO's llhttp: corpus replay and seeded mutations")
struct HTTP1ResponseDifferentialTests {
    static let corpusDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("ResponseCorpus")

    static func corpus() throws -> [(name: String, bytes: [UInt8])] {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.corpusDirectory.path).sorted()
        return try names.map { name in
            (name, Array(try Data(contentsOf: Self.corpusDirectory.appendingPathComponent(name))))
        }
    }

    @Test("every corpus input, to a GET and to a HEAD: both read the same responses, or ours refuses")
    func corpusReplay() throws {
        let corpus = try Self.corpus()
        #expect(corpus.count >= 60)
        var accepted = 0
        var refused = 0
        for (name, bytes) in corpus {
            for toHEAD in [false, true] {
                switch HTTP1ResponseDifferential.check(bytes, toHEAD: toHEAD) {
                case .mismatch(let difference):
                    Issue.record("\(name) (HEAD: \(toHEAD)): \(difference)")
                case .bothAccepted:
                    accepted += 1
                case .oursRefused:
                    refused += 1
                case .bothIncomplete:
                    break
                }
            }
        }
        // Not a vacuous run: the corpus holds both well-formed responses and attacks.
        #expect(accepted >= 40)
        #expect(refused >= 40)
    }

    @Test("the corpus's attacks are refused by ours")
    func attacksRefused() throws {
        for (name, bytes) in try Self.corpus() where name.hasPrefix("attack-") || name.hasPrefix("bad-") {
            guard case .oursRefused = HTTP1ResponseDifferential.check(bytes, toHEAD: false) else {
                Issue.record("\(name) was not refused")
                continue
            }
        }
    }

    @Test("seeded mutations of the corpus (bytes flipped, inserted from HTTP's delimiters, removed)")
    func mutations() throws {
        let corpus = try Self.corpus()
        var random = SplitMix64(seed: 0x5EED_4321)
        let dictionary: [[UInt8]] = [
            [13], [10], [13, 10], [32], [9], [58], [0], [44], [59], [127], [0xC3, 0xA9],
            Array("Content-Length: 5\r\n".utf8), Array("Transfer-Encoding: chunked\r\n".utf8),
            Array("Connection: close\r\n".utf8), Array("HTTP/1.0 ".utf8), Array("HTTP/1.1 100 Continue\r\n\r\n".utf8),
            Array(" 204 ".utf8), Array(" 304 ".utf8), Array("0\r\n\r\n".utf8),
        ]
        var outcomes: [String: Int] = [:]
        for iteration in 0..<10000 {
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
            switch HTTP1ResponseDifferential.check(bytes, toHEAD: iteration % 4 == 0) {
            case .mismatch(let difference):
                Issue.record("\(bytes.debugDescription): \(difference)")
                outcomes["mismatch", default: 0] += 1
            case .bothAccepted: outcomes["both accepted", default: 0] += 1
            case .oursRefused: outcomes["ours refused", default: 0] += 1
            case .bothIncomplete: outcomes["both incomplete", default: 0] += 1
            }
        }
        #expect(outcomes["both accepted", default: 0] >= 800, "\(outcomes)")
        #expect(outcomes["ours refused", default: 0] >= 5000, "\(outcomes)")
    }
}
