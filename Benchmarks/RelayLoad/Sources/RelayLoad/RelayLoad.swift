import ArgumentParser
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

extension WireProtocol: ExpressibleByArgument {}

/// Fan-out load: N WebSocket subscribers on one channel and one publisher at a fixed rate, or
/// (`--idle`) N subscribers that connect, subscribe and hold. Prints one JSON line.
@main
struct RelayLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay-load",
        abstract: "WebSocket fan-out load for the Fluxer Relay and nats-server; prints one JSON line of results."
    )

    @Option(help: "relay (Centrifugal JSON) or nats (NATS text protocol over WebSocket).")
    var `protocol`: WireProtocol

    @Option(help: "The WebSocket URL, ws://HOST:PORT/PATH (plain WebSocket only).")
    var url: String

    @Option(help: "Where the publisher connects, if not --url (another node of the same relay cluster).")
    var publishURL: String?

    @Option(help: "Subscribers on the one channel.")
    var subscribers = 100

    @Option(help: "Publications per second.")
    var rate = 100.0

    @Option(help: "Seconds of publishing.")
    var duration = 10.0

    @Option(help: "Bytes of each publication's JSON payload (timestamp, sequence and padding).")
    var payloadBytes = 128

    @Option(help: "Event loops (threads) of the generator.")
    var threads = 2

    @Option(help: "Subscribers connecting at once.")
    var connectBatch = 250

    @Option(help: "Seconds a connection may take to connect and subscribe.")
    var readyTimeout = 30

    @Option(help: "Seconds to wait after the last publication for deliveries still in flight.")
    var drainTimeout = 10.0

    @Flag(help: "Connect and subscribe, print a ready line, then hold the connections (answering pings).")
    var idle = false

    @Option(help: "With --idle: seconds to hold before exiting (the caller normally stops it first).")
    var hold = 600.0

    func validate() throws {
        guard self.subscribers >= 1, self.rate > 0, self.duration > 0, self.threads >= 1, self.connectBatch >= 1 else {
            throw ValidationError("subscribers, rate, duration, threads and connect-batch must be positive")
        }
        _ = try Target(url: self.url)
        if let publishURL = self.publishURL { _ = try Target(url: publishURL) }
    }

    func run() throws {
        let target = try Target(url: self.url)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: self.threads)
        defer { try? group.syncShutdownGracefully() }
        var statsByLoop: [ObjectIdentifier: LoopStats] = [:]
        var loops: [any EventLoop] = []
        for loop in group.makeIterator() {
            statsByLoop[ObjectIdentifier(loop)] = LoopStats()
            loops.append(loop)
        }
        let opener = Opener(
            group: group,
            target: target,
            wire: self.protocol,
            statsByLoop: statsByLoop,
            readyTimeout: .seconds(Int64(self.readyTimeout))
        )

        // Subscribers, in batches so the accept queues are not overrun.
        let connectStart = NIODeadline.now()
        var channels: [any Channel] = []
        var failures: [String: Int] = [:]
        var opened = 0
        while opened < self.subscribers {
            let batch = min(self.connectBatch, self.subscribers - opened)
            let futures = (0..<batch).map { _ in opener.open(role: .subscriber) }
            for future in futures {
                do {
                    channels.append(try future.wait().channel)
                } catch {
                    failures["\(error)", default: 0] += 1
                }
            }
            opened += batch
        }
        let connectSeconds = Double((NIODeadline.now() - connectStart).nanoseconds) / 1e9
        let failed = failures.values.reduce(0, +)
        for (error, count) in failures.sorted(by: { $0.value > $1.value }).prefix(3) {
            Self.write("relay-load: \(count) connection(s) failed: \(error)\n", to: 2)
        }

        if self.idle {
            Self.write(
                "{\"mode\":\"idle\",\"protocol\":\"\(self.protocol.rawValue)\",\"subscribers\":\(channels.count),"
                    + "\"failed\":\(failed),\"connect_s\":\(Self.format(connectSeconds, 2))}\n",
                to: 1
            )
            let until = NIODeadline.now() + .milliseconds(Int64(self.hold * 1000))
            while NIODeadline.now() < until { usleep(200_000) }
            Self.close(channels)
            return
        }

        var publisherOpener = opener
        if let publishURL = self.publishURL { publisherOpener.target = try Target(url: publishURL) }
        let publisher = try publisherOpener.open(role: .publisher).wait()
        let padding = String(repeating: "x", count: max(0, self.payloadBytes - 48))
        let total = max(1, Int((self.rate * self.duration).rounded()))
        let cpuStart = Self.processCPUSeconds()
        let wallStart = NIODeadline.now()
        let published = try Self.publish(
            on: publisher.connection,
            loop: publisher.channel.eventLoop,
            rate: self.rate,
            total: total,
            padding: padding
        ).wait()

        // Wait for what is still in flight: until every subscriber has every publication, no
        // delivery for a second, or the drain timeout.
        let expected = published.count * channels.count
        let drainUntil = NIODeadline.now() + .milliseconds(Int64(self.drainTimeout * 1000))
        var lastSeen = -1
        var quietSince = NIODeadline.now()
        while NIODeadline.now() < drainUntil {
            let delivered = try Self.sum(loops, statsByLoop) { $0.delivered }
            if delivered >= expected { break }
            if delivered != lastSeen {
                lastSeen = delivered
                quietSince = NIODeadline.now()
            } else if NIODeadline.now() - quietSince > .seconds(1) {
                break
            }
            usleep(20_000)
        }
        let cpuSeconds = Self.processCPUSeconds() - cpuStart
        let wallSeconds = Double((NIODeadline.now() - wallStart).nanoseconds) / 1e9

        // Gather the loops' counters on their loops.
        let snapshots = try loops.map { loop in
            try loop.submit { () -> LoopStats in
                let stats = statsByLoop[ObjectIdentifier(loop)]!
                let copy = LoopStats()
                copy.delivered = stats.delivered
                copy.histogram = stats.histogram
                copy.lastDeliveryNanos = stats.lastDeliveryNanos
                copy.pingsAnswered = stats.pingsAnswered
                copy.unsubscribed = stats.unsubscribed
                copy.serverErrors = stats.serverErrors
                copy.closedWhileReady = stats.closedWhileReady
                copy.outOfOrder = stats.outOfOrder
                copy.skipped = stats.skipped
                return copy
            }.wait()
        }
        var histogram = LatencyHistogram()
        for snapshot in snapshots { histogram.merge(snapshot.histogram) }
        let delivered = snapshots.reduce(0) { $0 + $1.delivered }
        let lastDelivery = snapshots.map(\.lastDeliveryNanos).max() ?? 0
        // Deliveries over the time from the first publication to the last delivery: a server
        // that falls behind stretches the denominator.
        let span = Double(max(lastDelivery, published.lastAt) - published.firstAt) / 1e9
        let deliveredPerSecond = span > 0 ? Double(delivered) / span : 0
        let fields: [(String, String)] = [
            ("protocol", "\"\(self.protocol.rawValue)\""),
            ("subscribers", "\(channels.count)"),
            ("failed", "\(failed)"),
            ("rate", Self.format(self.rate, 1)),
            ("duration_s", Self.format(self.duration, 1)),
            ("published", "\(published.count)"),
            (
                "publish_rate",
                Self.format(
                    Double(published.count) / (Double(published.lastAt - published.firstAt) / 1e9 + 1 / self.rate),
                    1
                )
            ),
            ("expected", "\(expected)"),
            ("delivered", "\(delivered)"),
            ("delivery_ratio", Self.format(expected > 0 ? Double(delivered) / Double(expected) : 0, 4)),
            ("delivered_per_s", Self.format(deliveredPerSecond, 0)),
            ("p50_ms", Self.format(Double(histogram.percentile(0.50)) / 1000, 3)),
            ("p99_ms", Self.format(Double(histogram.percentile(0.99)) / 1000, 3)),
            ("max_ms", Self.format(Double(histogram.maxMicros) / 1000, 3)),
            ("unsubscribed", "\(snapshots.reduce(0) { $0 + $1.unsubscribed })"),
            ("server_errors", "\(snapshots.reduce(0) { $0 + $1.serverErrors })"),
            ("closed", "\(snapshots.reduce(0) { $0 + $1.closedWhileReady })"),
            ("out_of_order", "\(snapshots.reduce(0) { $0 + $1.outOfOrder })"),
            ("skipped", "\(snapshots.reduce(0) { $0 + $1.skipped })"),
            ("pings_answered", "\(snapshots.reduce(0) { $0 + $1.pingsAnswered })"),
            ("connect_s", Self.format(connectSeconds, 2)),
            // Of `threads` cores: near threads * 100 means the generator, not the server, limited the run.
            ("loadgen_cpu_pct", Self.format(wallSeconds > 0 ? cpuSeconds / wallSeconds * 100 : 0, 1)),
            ("threads", "\(self.threads)"),
        ]
        Self.write("{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}\n", to: 1)
        Self.close(channels + [publisher.channel])
    }

    /// Publishes `total` messages at `rate` per second from a 1 ms timer on the publisher's loop,
    /// catching up when a tick comes late, with one flush per tick.
    static func publish(
        on connection: LoadConnection,
        loop: any EventLoop,
        rate: Double,
        total: Int,
        padding: String
    ) -> EventLoopFuture<(count: Int, firstAt: UInt64, lastAt: UInt64)> {
        let promise = loop.makePromise(of: (count: Int, firstAt: UInt64, lastAt: UInt64).self)
        /// The timer's progress; only touched on `loop`.
        final class Progress: @unchecked Sendable {
            var start: UInt64 = 0
            var sent = 0
        }
        let progress = Progress()
        loop.execute {
            progress.start = NIODeadline.now().uptimeNanoseconds
            loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(1)) { task in
                let now = NIODeadline.now().uptimeNanoseconds
                let due = min(total, Int(Double(now - progress.start) * rate / 1e9) + 1)
                guard progress.sent < due else { return }
                while progress.sent < due {
                    connection.publish(sequence: progress.sent, padding: padding)
                    progress.sent += 1
                }
                connection.flush()
                if progress.sent >= total {
                    task.cancel()
                    promise.succeed((progress.sent, progress.start, now))
                }
            }
        }
        return promise.futureResult
    }

    static func sum(
        _ loops: [any EventLoop],
        _ statsByLoop: [ObjectIdentifier: LoopStats],
        _ value: @escaping @Sendable (LoopStats) -> Int
    ) throws -> Int {
        try loops.map { loop in loop.submit { value(statsByLoop[ObjectIdentifier(loop)]!) } }
            .reduce(0) { $0 + (try $1.wait()) }
    }

    static func close(_ channels: [any Channel]) {
        let closes = channels.map { $0.close() }
        for future in closes { try? future.wait() }
    }

    /// Unbuffered, so a caller polling the output sees the line at once.
    static func write(_ text: String, to descriptor: Int32) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }

    static func processCPUSeconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    static func format(_ value: Double, _ decimals: Int) -> String {
        guard value.isFinite else { return "0" }
        var multiplier = 1.0
        for _ in 0..<decimals { multiplier *= 10 }
        let rounded = (value * multiplier).rounded() / multiplier
        return decimals == 0 ? String(Int(rounded)) : String(rounded)
    }
}

/// Where to connect: host, port and path of a `ws://` URL.
struct Target: Sendable {
    let host: String
    let port: Int
    let path: String

    init(url: String) throws {
        guard url.hasPrefix("ws://") else { throw ValidationError("--url must start with ws:// (no TLS here): \(url)") }
        let rest = url.dropFirst("ws://".count)
        let authority = rest.prefix { $0 != "/" }
        self.path = rest.count > authority.count ? String(rest.dropFirst(authority.count)) : "/"
        guard let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...])
        else {
            throw ValidationError("--url needs a port: \(url)")
        }
        self.host = String(authority[..<colon])
        self.port = port
    }

    var hostHeader: String { "\(self.host):\(self.port)" }
}

/// Opens connections round-robin over the generator's loops, each with its loop's counters.
struct Opener: Sendable {
    let group: MultiThreadedEventLoopGroup
    var target: Target
    let wire: WireProtocol
    let statsByLoop: [ObjectIdentifier: LoopStats]
    let readyTimeout: TimeAmount

    struct Opened: Sendable {
        let channel: any Channel
        let connection: LoadConnection
    }

    /// Connects, upgrades and runs the protocol's handshake; succeeds once the connection is
    /// subscribed (subscriber) or connected (publisher).
    func open(role: LoadConnection.Role) -> EventLoopFuture<Opened> {
        let loop = self.group.next()
        let ready = loop.makePromise(of: Void.self)
        let stats = self.statsByLoop[ObjectIdentifier(loop)]!
        let connection = LoadConnection(
            wire: self.wire,
            role: role,
            stats: stats,
            ready: ready,
            readyTimeout: self.readyTimeout
        )
        let target = self.target
        return ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(WebSocketUpgradeHandler(host: target.hostHeader, path: target.path))
                    try sync.addHandler(connection)
                }
            }
            .connect(host: target.host, port: target.port)
            .flatMap { channel in
                ready.futureResult.map { Opened(channel: channel, connection: connection) }
            }
            .flatMapErrorThrowing { error in
                ready.fail(error)  // No-op once completed; completes it when the connect itself failed.
                throw error
            }
    }
}
