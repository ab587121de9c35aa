public import NIOCore

/// A Prometheus histogram recorded on the event loops without a lock or an atomic: each loop
/// observes into its own copy (its ``Recorder``); `/metrics` reads every loop's copy on its loop
/// and adds them up, as the HTTP request metrics are. For plugins whose hot path records a
/// duration per request (`http-proxy`'s `gateway_upstream_request_duration_seconds`), where a
/// swift-metrics timer would take the Prometheus registry's lock per observation.
///
/// Made by ``GatewayMetrics/loopHistogram(_:help:labels:bounds:eventLoopGroup:)`` (or a plugin's
/// ``PluginContext/loopHistogram(_:help:labels:)``): the same name and labels give the same
/// instance, so a backend re-created by a reload keeps counting where the old one stopped.
public final class LoopHistogram: Sendable {
    /// The metric family's name (`gateway_upstream_request_duration_seconds`).
    public let name: String
    let help: String
    /// Label names and values of this series, in order.
    let labels: [(String, String)]
    private let recorders: [ObjectIdentifier: Recorder]
    private let loops: [any EventLoop]

    /// One event loop's copy: call ``observe(_:)`` on that loop only.
    public final class Recorder: @unchecked Sendable {
        // Only touched on its loop (observe) or by a task submitted to its loop (the scrape).
        fileprivate var histogram: Histogram
        private let eventLoop: any EventLoop

        fileprivate init(bounds: [Double], eventLoop: any EventLoop) {
            self.histogram = Histogram(bounds: bounds)
            self.eventLoop = eventLoop
        }

        /// Counts one observation (seconds, bytes...). On the recorder's event loop.
        public func observe(_ value: Double) {
            self.eventLoop.preconditionInEventLoop()
            self.histogram.observe(value)
        }
    }

    init(name: String, help: String, labels: [(String, String)], bounds: [Double], eventLoopGroup: any EventLoopGroup) {
        self.name = name
        self.help = help
        self.labels = labels
        var recorders: [ObjectIdentifier: Recorder] = [:]
        var loops: [any EventLoop] = []
        for eventLoop in eventLoopGroup.makeIterator() {
            recorders[ObjectIdentifier(eventLoop)] = Recorder(bounds: bounds, eventLoop: eventLoop)
            loops.append(eventLoop)
        }
        self.recorders = recorders
        self.loops = loops
    }

    /// The copy of `eventLoop` (one of the group's); keep it where that loop's state is kept.
    public func recorder(on eventLoop: any EventLoop) -> Recorder {
        guard let recorder = self.recorders[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("\(eventLoop) is not a loop of the group the histogram \(self.name) was made for")
        }
        return recorder
    }

    /// Every loop's copy added up, each read on its loop.
    func snapshot() async -> Histogram? {
        var total: Histogram?
        for eventLoop in self.loops {
            guard let recorder = self.recorders[ObjectIdentifier(eventLoop)],
                let copy = try? await eventLoop.submit({ recorder.histogram }).get()
            else { continue }
            if total == nil { total = copy.emptyCopy }
            total?.add(copy)
        }
        return total
    }

    /// The series' label set in the text format, without braces: `backend="api"`.
    var labelText: String {
        self.labels.map { "\($0.0)=\(HTTPMetricsSnapshot.quoted($0.1))" }.joined(separator: ",")
    }
}
