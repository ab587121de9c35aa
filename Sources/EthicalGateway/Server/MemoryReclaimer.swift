public import Logging
public import NIOPosix
public import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// Gives memory back to the operating system after a burst of connections has ended.
///
/// glibc's allocator keeps freed memory in its per-thread arenas: after 1,500 slow TLS clients
/// went away, the gateway's resident memory stayed at its peak (measured: 100 MB, of which
/// `malloc_trim` returned 53 MB). Every ``interval`` this service compares the most connections
/// open at once since its last release with those open now; when at least ``threshold`` have gone,
/// it asks the allocator to return its free pages (`malloc_trim(0)`, on a thread-pool thread,
/// never on an event loop). Steady traffic, even with many short connections, never triggers it.
public struct MemoryReclaimer: Service {
    /// How many connections must have gone since the peak before memory is released.
    public var threshold: Int
    /// How often the connection counts are looked at.
    public var interval: Duration
    private let counts: @Sendable () -> (peak: Int, open: Int)
    private let release: @Sendable () -> Void
    private let threadPool: NIOThreadPool
    private let logger: Logger

    /// - Parameters:
    ///   - counts: the peak and current open connections (``GatewayServer/takeConnectionPeak()``).
    ///   - release: what releasing memory means; `malloc_trim(0)` by default.
    ///   - threadPool: where `release` runs (it can take milliseconds on a large heap).
    public init(
        threshold: Int = 256,
        interval: Duration = .seconds(10),
        logger: Logger,
        counts: @escaping @Sendable () -> (peak: Int, open: Int),
        release: @escaping @Sendable () -> Void = MemoryReclaimer.trimAllocator,
        threadPool: NIOThreadPool = .singleton
    ) {
        self.threshold = threshold
        self.interval = interval
        self.counts = counts
        self.release = release
        self.threadPool = threadPool
        self.logger = logger
    }

    /// Whether the connections that went since the peak are enough to release memory.
    public static func shouldRelease(peak: Int, open: Int, threshold: Int) -> Bool {
        peak - open >= threshold
    }

    public func run() async throws {
        // Memory of closed connections is freed a little after they are counted as closed
        // (TLS state, buffers held by callbacks still queued): measured after a slowloris run,
        // a release at the first look left 142 MB that a second one took down to 49 MB. So a
        // release is followed by one more at the next look.
        var followUp = false
        // The most connections open since the last release: a burst that drains over several
        // looks (17 gone by one look, 18 by the next) still counts as one.
        var highest = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            // A graceful shutdown ends the wait at once (SIGTERM must not wait a whole interval).
            let interval = self.interval
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            let (peak, open) = self.counts()
            highest = max(highest, peak)
            let burstEnded = Self.shouldRelease(peak: highest, open: open, threshold: self.threshold)
            if burstEnded { highest = open }
            guard burstEnded || followUp else { continue }
            followUp = burstEnded
            let release = self.release
            try? await self.threadPool.runIfActive { release() }
            self.logger.debug(
                "released free memory after connections closed",
                metadata: ["open-connections": "\(open)"]
            )
        }
    }

    /// `malloc_trim(0)` where the C library has it (glibc), looked up at run time: Swift's
    /// Glibc module does not export `malloc.h`.
    public static let trimAllocator: @Sendable () -> Void = {
        #if canImport(Glibc)
            typealias Trim = @convention(c) (Int) -> Int32
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
            _ = unsafeBitCast(symbol, to: Trim.self)(0)
        #endif
    }
}
