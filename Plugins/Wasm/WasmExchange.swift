import EthicalGateway
import NIOCore
import NIOHTTP1

/// One request as a guest sees and changes it, from `handle_request` to `handle_response`.
///
/// Loop-confined: made, used and dropped on the request's event loop.
final class WasmExchange {
    /// Where the request stands for the guest.
    enum Phase {
        /// In `handle_request`: the request can be changed; a response the guest writes is sent
        /// instead of calling the next handler.
        case request
        /// In `handle_response`: the response head (and, when held, its body) can be changed.
        case response
    }

    var phase: Phase = .request
    /// The request, with the guest's changes.
    var request: GatewayRequest
    /// The response: the guest's own (request phase) or the backend's (response phase).
    var status: Int = 200
    var responseHeaders: HTTPHeaders = [:]
    /// Response headers the guest set or added while handling the request: applied to the
    /// backend's response, as net/http hosts (Traefik) send headers set before `next`.
    var earlyResponseHeaders: HTTPHeaders = [:]
    var responseBody: ByteBuffer?
    /// The response's trailers in the response phase (those of a held response; empty otherwise).
    var responseTrailers: HTTPHeaders = [:]
    /// How far the guest has read the held request body (``GatewayRequest/heldBody``).
    var requestBodyReadIndex = 0
    /// Whether the guest wrote the request body (the first write replaces it).
    var wroteRequestBody = false
    /// Whether the guest wrote the response body in the current phase (the first write replaces it).
    var wroteResponseBody = false
    /// How far the guest has read the response body.
    var responseBodyReadIndex = 0
    /// Whether `handle_response` ran (or failed) for this request.
    var responseHandled = false
    /// Whether the guest changed the response in the response phase.
    var responseChanged = false
    /// The features of this request (the instance's, plus what the guest enabled meanwhile).
    var features: HTTPWasmFeatures
    /// The fuel left for this request.
    var fuelLeft: UInt64
    /// The wall time the request has left in the guest (time in the backend does not count).
    var wallTimeLeft: TimeAmount
    /// When the current guest call runs out of ``wallTimeLeft``.
    var deadline: NIODeadline = .distantFuture
    /// The guest's context from `handle_request`, passed back to `handle_response`.
    var guestContext: UInt32 = 0

    init(request: GatewayRequest, features: HTTPWasmFeatures, fuel: UInt64, wallTime: TimeAmount) {
        self.request = request
        self.features = features
        self.fuelLeft = fuel
        self.wallTimeLeft = wallTime
    }

    /// The headers a header function works on, by kind. Trailers need the `trailers` feature:
    /// the request's are there once its body was held, the response's in `handle_response`
    /// of a held response (`buffer_response`); otherwise they read as empty.
    func headers(_ kind: HeaderKind) throws -> HTTPHeaders {
        switch kind {
        case .request: return self.request.head.headers
        case .response: return self.phase == .request ? self.earlyResponseHeaders : self.responseHeaders
        case .requestTrailers:
            try self.requireTrailers()
            return self.request.heldTrailers ?? [:]
        case .responseTrailers:
            try self.requireTrailers()
            return self.phase == .response ? self.responseTrailers : [:]
        }
    }

    /// Changes the headers of a kind, where the phase (and, for trailers, the features) allow it.
    func changeHeaders(_ kind: HeaderKind, _ change: (inout HTTPHeaders) -> Void) throws {
        switch kind {
        case .request:
            guard self.phase == .request else {
                throw WasmGuestError.abi("the request headers cannot change after the next handler ran")
            }
            change(&self.request.head.headers)
        case .response:
            if self.phase == .request {
                change(&self.earlyResponseHeaders)
            } else {
                change(&self.responseHeaders)
                self.responseChanged = true
            }
        case .requestTrailers:
            try self.requireTrailers()
            guard self.phase == .request, self.request.heldBody != nil else {
                throw WasmGuestError.abi(
                    "the request trailers can change only in handle_request with buffer_request enabled while initializing"
                )
            }
            var trailers = self.request.heldTrailers ?? [:]
            change(&trailers)
            self.request.heldTrailers = trailers
        case .responseTrailers:
            try self.requireTrailers()
            guard self.phase == .response, self.features.contains(.bufferResponse) else {
                throw WasmGuestError.abi(
                    "the response trailers can change only in handle_response with buffer_response"
                )
            }
            change(&self.responseTrailers)
            self.responseChanged = true
        }
    }

    private func requireTrailers() throws {
        guard self.features.contains(.trailers) else {
            throw WasmGuestError.abi("trailers are readable only with the trailers feature enabled")
        }
    }

    /// Fails a call that only makes sense in `phase`.
    func requirePhase(_ phase: Phase, _ function: String) throws {
        guard self.phase == phase else {
            throw WasmGuestError.abi("\(function) can only be called while handling the \(phase)")
        }
    }

    /// Sets the request target: an origin-form path with an optional query, as the backend gets it.
    func setURI(_ uri: String) throws {
        guard uri.hasPrefix("/"), uri.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
            throw WasmGuestError.abi(
                "set_uri: \"\(uri.prefix(64))\" is not a path starting with / without spaces or controls"
            )
        }
        self.request.head.uri = uri
        if let question = uri.firstIndex(of: "?") {
            self.request.path = String(uri[..<question])
            self.request.query = String(uri[uri.index(after: question)...])
        } else {
            self.request.path = uri
            self.request.query = nil
        }
    }

    /// The response the guest wrote itself when it did not call the next handler.
    func guestResponse() -> GatewayResponse {
        var headers = self.earlyResponseHeaders
        headers.remove(name: "content-length")
        headers.remove(name: "transfer-encoding")
        return GatewayResponse(
            status: HTTPResponseStatus(statusCode: self.status),
            headers: headers,
            body: self.responseBody
        )
    }
}
