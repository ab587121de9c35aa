import Logging
import NIOConcurrencyHelpers
import NIOHTTP1
import OTel
import ServiceLifecycle
public import Tracing

/// Makes the spans of requests (swift-distributed-tracing) and exports them over OTLP/HTTP
/// (swift-otel), as the top-level `"tracing"` object says.
///
/// Made without side effects; ``start()`` creates the exporter and runs its batch processor in
/// the background, ``close()`` flushes what is queued and stops it. An unchanged `tracing` keeps
/// its tracer across a reload. The tracer is the gateway's own instance, not the process-wide
/// `InstrumentationSystem`, so several gateways in one process (the tests) each export to theirs.
final class RequestTracer: Sendable {
    let configuration: TracingConfiguration
    private let logger: Logger
    private let state = NIOLockedValueBox(State.idle)

    private enum State {
        case idle
        case running(tracer: any Tracer, group: ServiceGroup, task: Task<Void, Never>)
        case closed
    }

    /// - Parameter flushSeconds: how long ``close()`` waits for the last export (the gateway's
    ///   `shutdownGracePeriodSeconds`; at least 1 s, at most `exportTimeoutSeconds`).
    init(_ configuration: TracingConfiguration, logger: Logger, flushSeconds: Double = 10) {
        self.configuration = configuration
        self.logger = logger
        self.finalFlushSeconds = min(max(flushSeconds, 1), configuration.exportTimeoutSeconds)
    }

    /// The OTel configuration this gateway's settings describe (the `OTEL_*` environment
    /// variables still override it, in `makeTracingBackend`).
    private var otelConfiguration: OTel.Configuration {
        var otel = OTel.Configuration.default
        otel.serviceName = self.configuration.serviceName
        otel.metrics.enabled = false
        otel.logs.enabled = false
        otel.traces.enabled = true
        otel.propagators = [.traceContext]
        // The sampling decision is taken before a span is made (``isSampled(_:)``); what reaches
        // the tracer is recorded.
        otel.traces.sampler = .parentBasedAlwaysOn
        otel.traces.exporter = .otlp
        otel.traces.otlpExporter.endpoint = self.configuration.endpoint
        otel.traces.otlpExporter.protocol = .httpProtobuf
        otel.traces.otlpExporter.headers = self.configuration.headers.sorted { $0.key < $1.key }.map {
            ($0.key, $0.value)
        }
        otel.traces.otlpExporter.timeout = .milliseconds(Int64(self.configuration.exportTimeoutSeconds * 1000))
        otel.traces.batchSpanProcessor.scheduleDelay = .milliseconds(
            Int64(self.configuration.exportDelaySeconds * 1000)
        )
        otel.diagnosticLogger = .custom(self.logger)
        otel.diagnosticLogLevel = .warning
        return otel
    }

    /// Creates the exporter and starts the background export.
    func start() throws {
        let backend = try OTel.makeTracingBackend(configuration: self.otelConfiguration)
        let group = ServiceGroup(
            configuration: .init(services: [backend.service], gracefulShutdownSignals: [], logger: self.logger)
        )
        let logger = self.logger
        let task = Task {
            do {
                try await group.run()
            } catch is CancellationError {
                // ``close()`` gave up on a collector that did not answer (it says so).
            } catch {
                logger.error("span export stopped", metadata: ["error": "\(error)"])
            }
        }
        self.state.withLockedValue { $0 = .running(tracer: backend.factory, group: group, task: task) }
    }

    /// How long ``close()`` waits for the last export: a collector that is down must not hold a
    /// shutdown or a reload past the grace period for `exportTimeoutSeconds` (swift-otel retries
    /// until then).
    let finalFlushSeconds: Double

    /// Sends the spans still queued and stops the export, waiting at most
    /// ``finalFlushSeconds`` (then the export is cancelled and what is left is dropped).
    func close() async {
        let running = self.state.withLockedValue { state -> (ServiceGroup, Task<Void, Never>)? in
            defer { state = .closed }
            if case .running(_, let group, let task) = state { return (group, task) }
            return nil
        }
        guard let (group, task) = running else { return }
        await group.triggerGracefulShutdown()
        let seconds = self.finalFlushSeconds
        let inTime = await withTaskGroup(of: Bool.self) { waiting in
            waiting.addTask {
                await task.value
                return true
            }
            waiting.addTask {
                try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                return false
            }
            let first = await waiting.next() ?? true
            // Too late: cancel the export; the group then waits for it to stop.
            if !first { task.cancel() }
            waiting.cancelAll()
            return first
        }
        if !inTime {
            self.logger.warning(
                "spans still queued were dropped: the collector did not take them in time",
                metadata: ["seconds": "\(seconds)", "endpoint": "\(self.configuration.endpoint)"]
            )
        }
    }

    /// The tracer while running; `nil` before ``start()`` and after ``close()``.
    private var tracer: (any Tracer)? {
        self.state.withLockedValue { state in
            if case .running(let tracer, _, _) = state { return tracer }
            return nil
        }
    }

    /// Starts the server span of a request, continuing `incoming` (the caller's validated
    /// trace context) when there is one. Only for a request ``isSampled(_:)`` chose.
    func startServerSpan(
        method: HTTPMethod,
        incoming: TraceContext?,
        attributes: (inout SpanAttributes) -> Void
    ) -> RequestSpan? {
        guard let tracer = self.tracer else { return nil }
        var context = InstrumentationContext.topLevel
        if let incoming {
            tracer.extract(incoming, into: &context, using: TraceContextExtractor())
        }
        let span = tracer.startSpan(HTTPLoopMetrics.label(method), context: context, ofKind: .server)
        if span.isRecording { attributes(&span.attributes) }
        return RequestSpan(
            span: span,
            tracer: tracer,
            parentSpanID: incoming?.parentSpanID,
            traceState: incoming?.traceState,
            fallback: incoming
        )
    }
}

extension RequestTracer {
    /// Parent-based sampling, decided before any span object is made (swift-otel makes a span,
    /// ids and a context even for a request its sampler drops: 58,000 instructions): a caller's
    /// trace is recorded when the caller recorded it (flag `01`), a new one with probability
    /// `sampleRatio`. An unsampled request keeps only its ``TraceContext`` (flags `00`).
    func isSampled(_ incoming: TraceContext?) -> Bool {
        if let incoming { return incoming.isSampled }
        let ratio = self.configuration.sampleRatio
        return ratio >= 1 || (ratio > 0 && Double.random(in: 0..<1) < ratio)
    }
}

/// Hands the incoming `traceparent` and `tracestate`, as the gateway validated them, to the
/// tracer's W3C propagator.
private struct TraceContextExtractor: Extractor {
    func extract(key: String, from carrier: TraceContext) -> String? {
        switch key {
        case "traceparent": return carrier.callerTraceparent
        case "tracestate": return carrier.traceState
        default: return nil
        }
    }
}

/// Collects what the tracer's W3C propagator writes for the next hop.
private struct TraceHeaderInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}

/// A span of the gateway: a request's server span, or a client span of one upstream attempt.
///
/// Plugins reach the request's span as ``GatewayRequest/span`` and start their own under it
/// with ``startChild(_:kind:)``; `http-proxy` sends ``traceparent`` of its attempt's span to the
/// upstream.
public final class RequestSpan: Sendable {
    private let span: any Span
    private let tracer: any Tracer
    /// The trace context of this span: its trace, its own span id, the caller's as parent.
    public let trace: TraceContext

    /// Reads the span's ids back through the tracer's W3C propagator (swift-otel keeps them
    /// internal), so that the access log, problem documents and upstreams name the same span.
    fileprivate init(
        span: any Span,
        tracer: any Tracer,
        parentSpanID: String?,
        traceState: String?,
        fallback: TraceContext?
    ) {
        self.span = span
        self.tracer = tracer
        var headers: [String: String] = [:]
        tracer.inject(span.context, into: &headers, using: TraceHeaderInjector())
        self.trace =
            headers["traceparent"].flatMap {
                TraceContext.ownSpan(traceparent: $0, parentSpanID: parentSpanID, traceState: traceState)
            } ?? fallback ?? TraceContext.make(traceparent: nil, tracestate: nil)
    }

    /// Whether the span is sampled (recorded and exported).
    public var isRecording: Bool { self.span.isRecording }

    /// The `traceparent` value naming this span as the next hop's parent.
    public var traceparent: String { self.trace.traceparent }

    /// Starts a span under this one (an upstream attempt: `.client`).
    public func startChild(_ name: String, kind: SpanKind) -> RequestSpan {
        let child = self.tracer.startSpan(name, context: self.span.context, ofKind: kind)
        return RequestSpan(
            span: child,
            tracer: self.tracer,
            parentSpanID: self.trace.spanID,
            traceState: self.trace.traceState,
            fallback: nil
        )
    }

    /// Names the span anew (a server span gets its route's name once routing is done).
    public func rename(_ name: String) {
        if self.span.isRecording { self.span.operationName = name }
    }

    /// Sets an attribute (OpenTelemetry semantic conventions: `server.address`, ...).
    public func set(_ key: String, _ value: String) {
        if self.span.isRecording { self.span.attributes[key] = value }
    }

    /// Sets an integer attribute (`http.response.status_code`, ...).
    public func set(_ key: String, _ value: Int) {
        if self.span.isRecording { self.span.attributes[key] = value }
    }

    /// Ends the span with its outcome: `failure` marks it as an error with that description.
    public func end(failure: String? = nil) {
        if let failure { self.span.setStatus(SpanStatus(code: .error, message: failure)) }
        self.span.end()
    }
}
