import EthicalGateway
import Logging
import NIOCore
import NIOHTTP1

/// A filter that runs an http-wasm guest: `handle_request` before the backend,
/// `handle_response` after it.
///
/// The guest runs on the request's event loop, with no hop: a call is bounded by the fuel
/// budget (deterministic, checked by the interpreter) and the wall-time limit (checked at host
/// calls and on return), so a guest holds its loop for at most about a budget's worth of
/// interpretation. Instances are pooled per loop and serve one request at a time; a request
/// keeps its instance from `handle_request` to `handle_response`, since the guest's context
/// lives in its memory.
final class WasmFilter: Filter {
    let name: String
    let module: WasmGuestModule
    /// One pool per event loop of the gateway, each confined to its loop.
    let pools: [ObjectIdentifier: NIOLoopBoundBox<WasmGuestPool>]

    /// Whether the guest enabled `buffer_request` while initializing: the gateway then holds
    /// each request's body before `handle_request` runs.
    let holdsRequestBody: Bool

    init(name: String, module: WasmGuestModule, initialFeatures: HTTPWasmFeatures, eventLoopGroup: any EventLoopGroup) {
        self.name = name
        self.module = module
        self.holdsRequestBody = initialFeatures.contains(.bufferRequest)
        var pools: [ObjectIdentifier: NIOLoopBoundBox<WasmGuestPool>] = [:]
        for loop in eventLoopGroup.makeIterator() {
            pools[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeBoxSendingValue(
                WasmGuestPool(module: module),
                eventLoop: loop
            )
        }
        self.pools = pools
    }

    private var stateKey: ObjectIdentifier { ObjectIdentifier(self) }

    func filterRequest(_ request: inout GatewayRequest) -> FilterOutcome {
        guard let pool = self.pools[ObjectIdentifier(request.eventLoop)]?.value else {
            return self.fail(
                request,
                WasmGuestError.instantiation("the request runs on an event loop the filter does not know")
            )
        }
        let limits = self.module.limits
        let guest: WasmGuest
        do {
            guest = try pool.take()
        } catch {
            return self.fail(request, error)
        }
        let exchange = WasmExchange(
            request: request,
            features: guest.features,
            fuel: limits.fuelPerRequest,
            wallTime: .milliseconds(limits.wallTimeMilliseconds)
        )
        do {
            guard try guest.handleRequest(exchange) else {
                pool.putBack(guest)
                return .respond(exchange.guestResponse())
            }
        } catch {
            return self.fail(request, error)
        }
        exchange.phase = .response
        request = exchange.request
        request.filterState[self.stateKey] = NIOLoopBound(
            WasmPendingResponse(guest: guest, exchange: exchange, pool: pool),
            eventLoop: request.eventLoop
        )
        return .proceed
    }

    func requestBufferLimit(for request: GatewayRequest) -> Int? {
        self.holdsRequestBody ? self.module.limits.maxBufferedRequestBodyBytes : nil
    }

    func responseBufferLimit(for request: GatewayRequest) -> Int? {
        guard let pending = self.pending(request), pending.exchange.features.contains(.bufferResponse) else {
            return nil
        }
        return self.module.limits.maxBufferedBodyBytes
    }

    func filterBufferedResponse(_ response: inout GatewayResponse, for request: GatewayRequest) {
        guard let pending = self.pending(request) else { return }
        do {
            try self.handleResponse(
                pending,
                status: response.status,
                headers: response.headers,
                body: response.body,
                trailers: response.trailers,
                isError: request.backendFailed
            )
            response.status = HTTPResponseStatus(statusCode: pending.exchange.status)
            response.headers = pending.exchange.responseHeaders
            response.body = pending.exchange.responseBody
            response.trailers = pending.exchange.responseTrailers
        } catch {
            self.log(request, error)
            response = self.problem(for: request)
        }
    }

    func filterResponse(_ head: inout HTTPResponseHead, for request: GatewayRequest) {
        guard let pending = self.pending(request) else { return }
        do {
            try self.handleResponse(
                pending,
                status: head.status,
                headers: head.headers,
                body: nil,
                trailers: nil,
                isError: request.backendFailed
            )
            head.status = HTTPResponseStatus(statusCode: pending.exchange.status)
            head.headers = pending.exchange.responseHeaders
        } catch {
            // The backend's body follows this head whatever happens here, so it cannot become a
            // problem document any more: the head goes out as the backend wrote it.
            self.log(request, error)
        }
    }

    /// The request's instance and exchange, while `handle_response` has not run yet.
    private func pending(_ request: GatewayRequest) -> WasmPendingResponse? {
        guard let bound = request.filterState[self.stateKey] as? NIOLoopBound<WasmPendingResponse> else { return nil }
        let pending = bound.value
        return pending.exchange.responseHandled ? nil : pending
    }

    /// Runs `handle_response` on the response; the instance goes back to its pool when it succeeds.
    /// `isError` is 1 for the guest when the backend failed (``GatewayRequest/backendFailed``).
    private func handleResponse(
        _ pending: WasmPendingResponse,
        status: HTTPResponseStatus,
        headers: HTTPHeaders,
        body: ByteBuffer?,
        trailers: HTTPHeaders?,
        isError: Bool
    ) throws {
        let exchange = pending.exchange
        exchange.responseHandled = true
        exchange.status = Int(status.code)
        exchange.responseHeaders = headers
        for name in Set(exchange.earlyResponseHeaders.map { $0.name.lowercased() }) {
            exchange.responseHeaders.remove(name: name)
        }
        exchange.responseHeaders.add(contentsOf: exchange.earlyResponseHeaders)
        exchange.responseBody = body
        exchange.wroteResponseBody = false
        exchange.responseBodyReadIndex = 0
        exchange.responseTrailers = trailers ?? [:]
        exchange.requestBodyReadIndex = 0
        try pending.guest.handleResponse(exchange, isError: isError)
        pending.pool.putBack(pending.guest)
    }

    /// Logs why the guest failed the request and answers it with a 500 problem document.
    private func fail(_ request: GatewayRequest, _ error: any Error) -> FilterOutcome {
        self.log(request, error)
        return .respond(self.problem(for: request))
    }

    private func log(_ request: GatewayRequest, _ error: any Error) {
        request.logger.error(
            "wasm guest failed the request",
            metadata: ["filter": "\(self.name)", "reason": "\(error)"]
        )
    }

    private func problem(for request: GatewayRequest) -> GatewayResponse {
        let problem = ProblemDetails(
            status: .internalServerError,
            detail: "the request could not be processed (filter \"\(self.name)\")",
            instance: String(request.path.prefix(512)),
            requestID: request.requestID,
            traceID: request.trace?.traceID
        )
        let body = problem.jsonBody(allocator: ByteBufferAllocator())
        return GatewayResponse(
            status: .internalServerError,
            headers: ["content-type": "application/problem+json", "cache-control": "no-store"],
            body: body
        )
    }
}

/// What a request keeps between `handle_request` and `handle_response`.
struct WasmPendingResponse {
    let guest: WasmGuest
    let exchange: WasmExchange
    let pool: WasmGuestPool
}
