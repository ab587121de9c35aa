import EthicalGateway
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Runs the active health checks of one `http-proxy` backend on one event loop and tells every
/// loop when an upstream goes in or out of rotation (a message per change, so the request path
/// reads a plain loop-local flag).
final class ActiveHealthChecker: @unchecked Sendable {
    private let configuration: HealthCheckConfiguration
    private let upstreams: [Upstream]
    private let loops: [LoopBox]
    private let eventLoop: any EventLoop
    private let logger: Logger
    // Touched only on `eventLoop`.
    private var healthy: [Bool]
    private var streak: [Int]
    private var timer: Scheduled<Void>?
    private var stopped = false

    init(configuration: HealthCheckConfiguration, upstreams: [Upstream], loops: [LoopBox], logger: Logger) {
        self.configuration = configuration
        self.upstreams = upstreams
        self.loops = loops
        self.eventLoop = loops[0].state.eventLoop
        self.logger = logger
        self.healthy = Array(repeating: true, count: upstreams.count)
        self.streak = Array(repeating: 0, count: upstreams.count)
    }

    func start() {
        self.eventLoop.execute { self.round() }
    }

    func stop() {
        self.eventLoop.execute {
            self.stopped = true
            self.timer?.cancel()
        }
    }

    private func round() {
        guard !self.stopped else { return }
        for upstream in self.upstreams {
            self.check(upstream).whenComplete { result in
                let passed = (try? result.get()) ?? false
                self.record(upstream, passed: passed)
            }
        }
        self.timer = self.eventLoop.scheduleTask(in: .seconds(self.configuration.intervalSeconds)) { self.round() }
    }

    /// One `GET path` on a fresh connection; true for a 2xx or 3xx answer in time.
    private func check(_ upstream: Upstream) -> EventLoopFuture<Bool> {
        let outcome = CheckOutcome(promise: self.eventLoop.makePromise(of: Bool.self))
        let timeout = TimeAmount.seconds(self.configuration.timeoutSeconds)
        let deadline = self.eventLoop.scheduleTask(in: timeout) { outcome.finish(false) }
        let head = HTTPRequestHead(
            version: .http1_1,
            method: .GET,
            uri: self.configuration.path,
            headers: ["host": upstream.hostHeader, "user-agent": "ethical-gateway-health-check", "connection": "close"]
        )
        let tlsContext = self.loops[0].state.settings.tlsContext
        let serverName = self.loops[0].state.settings.tlsServerName
        ClientBootstrap(group: self.eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if upstream.usesTLS, let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(
                            try makeTLSHandler(context: tlsContext, upstream: upstream, serverName: serverName)
                        )
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(HealthCheckResponseHandler(outcome: outcome))
                }
            }
            .connect(to: upstream)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    channel.writeAndFlush(HTTPClientRequestPart.head(head), promise: nil)
                    channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                    outcome.promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                case .failure:
                    outcome.finish(false)
                }
            }
        return outcome.promise.futureResult.always { _ in deadline.cancel() }
    }

    private func record(_ upstream: Upstream, passed: Bool) {
        let index = upstream.index
        if passed == self.healthy[index] {
            self.streak[index] = 0
            return
        }
        self.streak[index] += 1
        let threshold = passed ? self.configuration.healthyThreshold : self.configuration.unhealthyThreshold
        guard self.streak[index] >= threshold else { return }
        self.streak[index] = 0
        self.healthy[index] = passed
        self.logger.notice(
            passed ? "upstream healthy again" : "upstream unhealthy; out of rotation",
            metadata: ["upstream": "\(upstream)", "path": "\(self.configuration.path)"]
        )
        self.loops.first?.state.settings.metrics.healthy[index].record(passed ? 1 : 0)
        for box in self.loops {
            box.state.eventLoop.execute { box.state.setHealthy(index, passed) }
        }
    }
}

/// The result of one check, completed once by whichever comes first: the answer, an error,
/// the connection closing, or the deadline. Used only on the checker's event loop.
private final class CheckOutcome: @unchecked Sendable {
    let promise: EventLoopPromise<Bool>
    private var done = false

    init(promise: EventLoopPromise<Bool>) {
        self.promise = promise
    }

    func finish(_ passed: Bool) {
        guard !self.done else { return }
        self.done = true
        self.promise.succeed(passed)
    }
}

/// Finishes the check with whether the status was 2xx or 3xx.
private final class HealthCheckResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let outcome: CheckOutcome

    init(outcome: CheckOutcome) {
        self.outcome = outcome
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = self.unwrapInboundIn(data), head.status.code >= 200 {
            self.outcome.finish((200..<400).contains(head.status.code))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.outcome.finish(false)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.outcome.finish(false)
    }
}
