import EthicalGateway
import Foundation
import NIOCore
import NIOHTTP1

/// One request to the relay's HTTP API for services.
///
/// Centrifugo-compatible server API: `POST /api/<method>` with a JSON object, answered
/// `200 {"result": …}` or `200 {"error": {"code": …, "message": …}}` (so `cent` and other
/// server SDKs work). Our own REST resources: `GET /api/stats`, `GET /api/namespaces` and
/// `GET`/`PUT`/`PATCH`/`DELETE /api/namespaces/{name}`, answered with HTTP statuses and
/// RFC 9457 problem documents.
///
/// Confined to the request's event loop: the gateway calls it there and every future it waits
/// for completes there, hence `@unchecked Sendable`.
final class RelayAPI: RequestBodyReceiver, @unchecked Sendable {
    let relay: Relay
    let request: GatewayRequest
    let response: ResponseWriter
    var body = ByteBuffer()

    init(relay: Relay, request: GatewayRequest, response: ResponseWriter) {
        self.relay = relay
        self.request = request
        self.response = response
    }

    /// Whether the credentials were accepted; `nil` while a token is being verified.
    var authorized: Bool?
    var bodyComplete = false

    /// Checks credentials, then reads the body (if any) and answers.
    func start() -> any RequestBodyReceiver {
        switch self.credentials() {
        case .accepted:
            self.authorized = true
        case .refused(let reason):
            self.refuse(reason)
            return DiscardingBodyReceiver.shared
        case .forbidden(let reason):
            self.forbid(reason)
            return DiscardingBodyReceiver.shared
        case .verify(let token):
            self.relay.authenticator.verify(token, on: self.request.eventLoop).whenSuccess { outcome in
                let scope = self.relay.configuration.apiScope
                switch outcome {
                case .success(let identity) where identity.scopes.contains(scope):
                    self.authorized = true
                    if self.bodyComplete { self.dispatch() }
                case .success:
                    self.authorized = false
                    self.forbid("the token lacks the scope \(scope)")
                case .failure(.refused(let refusal)):
                    self.authorized = false
                    self.refuse("the token was refused: \(refusal.reason)", error: refusal.errorCode ?? "invalid_token")
                case .failure(.notAccepted):
                    self.authorized = false
                    self.refuse("this relay verifies no bearer tokens; send the API key")
                case .failure(.failed(let error)):
                    self.authorized = false
                    self.request.logger.warning("relay API token verification failed", metadata: ["error": "\(error)"])
                    self.respondProblem(.serviceUnavailable, "the token could not be verified now; retry")
                }
            }
        }
        return self
    }

    func receiveBody(_ buffer: ByteBuffer) {
        guard self.authorized != false else { return }
        var buffer = buffer
        self.body.writeBuffer(&buffer)
    }

    func receiveEnd() {
        self.bodyComplete = true
        if self.authorized == true { self.dispatch() }
    }

    func dispatch() {
        let resource = String(self.request.path.dropFirst(RelayBackend.apiPrefix.count))
        switch (self.request.head.method, resource) {
        case (.GET, "stats"): self.stats()
        case (.GET, "namespaces"): self.listNamespaces()
        case (_, _) where resource.hasPrefix("namespaces/"):
            self.namespace(String(resource.dropFirst("namespaces/".count)))
        case (.POST, _): self.serverMethod(resource)
        default:
            self.respondProblem(
                .methodNotAllowed,
                "server API methods are POST; stats and namespaces are REST resources"
            )
        }
    }

    func cancel() {}

    // MARK: Authentication

    // MARK: Server API (Centrifugo-compatible)

    // MARK: REST resources

    // MARK: Responses

    static func errorObject(_ error: RelayError) -> WireJSON {
        .object(["error": .object(["code": .number(String(error.code)), "message": .string(error.message)])])
    }

    func respond(_ outcome: Result<WireJSON, any Error>) {
        switch outcome {
        case .success(let result): self.respondJSON(.ok, .object(["result": result]))
        case .failure(let error as RelayError): self.respondError(error)
        case .failure(let error): self.respondError(RelayError(engineFailure: error))
        }
    }

    func respondError(_ error: RelayError) {
        self.respondJSON(.ok, Self.errorObject(error))
    }

    func respondJSON(_ status: HTTPResponseStatus, _ document: WireJSON) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        var body = document.encoded
        body.writeStaticString("\n")
        self.response.respond(GatewayResponse(status: status, headers: headers, body: body))
    }

    /// A problem document, as the gateway renders its own (``ProblemDetails``), with `headers`
    /// (a `WWW-Authenticate` challenge, say) added.
    func respondProblem(_ status: HTTPResponseStatus, _ detail: String, headers: HTTPHeaders = [:]) {
        if headers.isEmpty {
            self.response.respondWithProblem(status, detail: detail)
            return
        }
        let problem = ProblemDetails(
            status: status,
            detail: detail,
            instance: self.request.path,
            requestID: self.request.requestID
        )
        var headers = headers
        headers.add(name: "content-type", value: "application/problem+json")
        headers.add(name: "cache-control", value: "no-store")
        self.response.respond(
            GatewayResponse(status: status, headers: headers, body: problem.jsonBody(allocator: ByteBufferAllocator()))
        )
    }
}

/// Compares secrets in time independent of where they differ.
func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
    let left = Array(lhs.utf8)
    let right = Array(rhs.utf8)
    var difference = UInt8(left.count == right.count ? 0 : 1)
    for index in 0..<max(left.count, right.count) {
        difference |= (index < left.count ? left[index] : 0) ^ (index < right.count ? right[index] : 0)
    }
    return difference == 0
}
