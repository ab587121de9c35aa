import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import Testing

@Suite("Connection floods: a bound on open connections, and memory given back after them")
struct ConnectionLimitTests {
    static let config = plainConfig(
        routes: #"[ { "backend": "ok" } ]"#,
        backends: #"{ "ok": { "plugin": "respond", "config": { "body": "ok" } } }"#,
        extra: #""limits": { "maxConnections": 40 }"#
    )

    @Test("past limits.maxConnections a new connection is closed at once; the ones open keep working")
    func maxConnections() async throws {
        try await LiveGateway.with(config: Self.config, registry: gatewayRegistry) { gateway in
            let port = gateway.port("http")
            var held: [RawConnection] = []
            // Each held connection sends its request at once (a connection that sent nothing
            // would get 408 after the header-read timeout), and has been accepted once answered.
            for _ in 0..<40 {
                let connection = try RawConnection(port: port)
                connection.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                held.append(connection)
            }
            for connection in held {
                #expect(await connection.read(until: "ok", timeout: 10).hasSuffix("ok"))
            }
            let extra = try RawConnection(port: port)
            let refused = await extra.readUntilClosed(timeout: 5)
            #expect(refused.closed && refused.text.isEmpty)
            #expect(gateway.server.refusedConnections == 1)
            held[0].send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(await held[0].read(until: "ok", timeout: 5).hasSuffix("ok"))
            held.removeAll()
            // Once they are gone, new connections are served again (bounded wait).
            var served = false
            for _ in 0..<50 where !served {
                let connection = try RawConnection(port: port)
                connection.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                served = await connection.read(until: "ok", timeout: 1).hasSuffix("ok")
            }
            #expect(served)
        }
    }

    @Test("memory is released only after a burst of connections has gone, not under steady traffic")
    func releasePolicy() {
        #expect(MemoryReclaimer.shouldRelease(peak: 1500, open: 3, threshold: 256))
        #expect(!MemoryReclaimer.shouldRelease(peak: 1500, open: 1400, threshold: 256))
        #expect(!MemoryReclaimer.shouldRelease(peak: 0, open: 0, threshold: 256))
    }

    @Test("the reclaimer releases memory once a burst of real connections has closed")
    func reclaimerRuns() async throws {
        try await LiveGateway.with(config: Self.config, registry: gatewayRegistry) { gateway in
            let releases = NIOLockedValueBox(0)
            let looks = NIOLockedValueBox<[String]>([])
            let server = gateway.server
            // A pool of its own: the shared one also serves other tests' blocking file work.
            let pool = NIOThreadPool(numberOfThreads: 1)
            pool.start()
            let reclaimer = MemoryReclaimer(
                threshold: 30,
                interval: .milliseconds(100),
                logger: Logger(label: "test"),
                counts: {
                    let counts = server.takeConnectionPeak()
                    looks.withLockedValue { $0.append("\(counts.peak)/\(counts.open)") }
                    return counts
                },
                release: { releases.withLockedValue { $0 += 1 } },
                threadPool: pool
            )
            let running = Task { try await reclaimer.run() }
            var burst: [RawConnection] = []
            for _ in 0..<35 {
                let connection = try RawConnection(port: gateway.port("http"))
                connection.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                burst.append(connection)
            }
            var answered = 0
            for connection in burst where await connection.read(until: "ok", timeout: 10).hasSuffix("ok") {
                answered += 1
            }
            #expect(answered == 35)
            #expect(releases.withLockedValue { $0 } == 0)
            burst.removeAll()
            // Bounded (20 s) for a loaded machine; it takes a few 100 ms looks when idle. A
            // release is followed by exactly one more at the next look, then nothing.
            for _ in 0..<400 where releases.withLockedValue({ $0 }) < 2 {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(
                releases.withLockedValue { $0 } == 2,
                "peak/open per look: \(looks.withLockedValue { $0.filter { $0 != "0/0" } + ["\($0.count) looks"] })"
            )
            try await Task.sleep(for: .milliseconds(500))
            #expect(releases.withLockedValue { $0 } == 2)
            running.cancel()
            try await pool.shutdownGracefully()
        }
    }
}
