import Benchmark
@_spi(Benchmarks) import FluxerRelayPlugin

/// One publication to 1, 100 and 10,000 subscribers inside one process: the engine, the hub,
/// every connection's delivery and the WebSocket frame each one writes (on embedded channels,
/// no sockets). The publication is encoded once; each subscriber costs a lookup and a frame.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        maxDuration: .seconds(2)
    )
    for subscribers in [1, 100, 10_000] {
        Benchmark("publish to \(subscribers) subscribers") { benchmark, probe in
            for _ in benchmark.scaledIterations {
                blackHole(try probe.publish())
            }
        } setup: {
            try RelayFanOutProbe(subscribers: subscribers)
        }
    }
}
