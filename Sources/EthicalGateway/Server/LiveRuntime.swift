import NIOConcurrencyHelpers
import NIOCore

/// The runtime in service, replaced whole by a reload. Every event loop keeps its own reference
/// (a ``Slot``), so a request reads the runtime it starts on without a lock; a reload installs
/// the new runtime on every loop and returns once each one serves from it.
final class LiveRuntime: Sendable {
    /// One event loop's view; touched only on that loop.
    final class Slot: @unchecked Sendable {
        let eventLoop: any EventLoop
        /// The runtime new requests on this loop start on.
        var runtime: GatewayRuntime
        /// ``runtime``'s in-flight counter for this loop.
        var inFlight: InFlightCounter?
        /// The HTTP request metrics of this loop (kept across reloads).
        let http = HTTPLoopMetrics()

        init(eventLoop: any EventLoop, runtime: GatewayRuntime) {
            self.eventLoop = eventLoop
            self.runtime = runtime
            self.inFlight = runtime.inFlight[ObjectIdentifier(eventLoop)]
        }
    }

    private let slots: [ObjectIdentifier: Slot]
    private let latest: NIOLockedValueBox<GatewayRuntime>

    init(_ runtime: GatewayRuntime, eventLoopGroup: any EventLoopGroup) {
        var slots: [ObjectIdentifier: Slot] = [:]
        for eventLoop in eventLoopGroup.makeIterator() {
            slots[ObjectIdentifier(eventLoop)] = Slot(eventLoop: eventLoop, runtime: runtime)
        }
        self.slots = slots
        self.latest = NIOLockedValueBox(runtime)
    }

    /// The runtime most recently installed (from any thread).
    var current: GatewayRuntime { self.latest.withLockedValue { $0 } }

    /// The slot of `eventLoop`; `nil` for a loop outside the gateway's group (tests on an
    /// `EmbeddedEventLoop`), which then reads ``current``.
    func slot(on eventLoop: any EventLoop) -> Slot? {
        self.slots[ObjectIdentifier(eventLoop)]
    }

    /// The runtime a connection on `eventLoop` serves its next request from.
    func runtime(on eventLoop: any EventLoop) -> GatewayRuntime {
        if let slot = self.slot(on: eventLoop), eventLoop.inEventLoop { return slot.runtime }
        return self.current
    }

    /// Every loop's HTTP request metrics, each read on its loop, added up.
    func httpMetrics() async -> HTTPMetricsSnapshot {
        var snapshot = HTTPMetricsSnapshot()
        for slot in self.slots.values {
            if let loop = try? await slot.eventLoop.submit({ HTTPMetricsSnapshot(adding: slot.http) }).get() {
                snapshot.add(loop)
            }
        }
        return snapshot
    }

    /// Installs `runtime` on every event loop; returns once no loop starts a request on the
    /// previous one.
    func install(_ runtime: GatewayRuntime) async {
        self.latest.withLockedValue { $0 = runtime }
        for slot in self.slots.values {
            try? await slot.eventLoop.submit {
                slot.runtime = runtime
                slot.inFlight = runtime.inFlight[ObjectIdentifier(slot.eventLoop)]
            }.get()
        }
    }
}
