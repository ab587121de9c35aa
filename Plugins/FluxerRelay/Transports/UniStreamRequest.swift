import EthicalGateway
import Foundation
import NIOCore
import NIOHTTP1

/// A request to a uni-directional transport (``UniStreamKind``): reads the connect request
/// (the `cf_connect` query parameter or the body), then runs a ``RelayConnection`` over the
/// response until either side ends it.
///
/// A request that is not a connect request is answered with an HTTP error and a problem
/// document naming what is wrong (405 for the method, 400 for JSON that is not a connect
/// request or a WebSocket opening, 413 for a body over `maxMessageBytes`): no connection exists yet to take a
/// disconnect code. Once the connect request is well-formed, refusals (no token, a token
/// refused, a limit) come as Centrifugo sends them: a 200 stream holding one `disconnect`
/// push with the protocol's code, which Centrifugo's clients already understand.
///
/// Confined to the request's event loop: the gateway calls it there and the connection runs
/// there, hence `@unchecked Sendable`.
final class UniStreamRequest: RequestBodyReceiver, @unchecked Sendable {
    private let relay: Relay
    private let request: GatewayRequest
    private let response: ResponseWriter
    private let kind: UniStreamKind
    private var body = ByteBuffer()
    private var refused = false
    private var connection: RelayConnection?

    /// The query parameter holding an SSE `GET`'s connect request (Centrifugo's name).
    static let connectParameter = "cf_connect"

    init(relay: Relay, request: GatewayRequest, response: ResponseWriter, kind: UniStreamKind) {
        self.relay = relay
        self.request = request
        self.response = response
        self.kind = kind
    }

    /// Checks the method; the connect request is read once the request's body is complete.
    func start() -> any RequestBodyReceiver {
        if self.request.head.headers.contains(name: "upgrade") {
            // A WebSocket opening (an HTTP/2 extended CONNECT reaches backends as this form too)
            // would never end its request, so the connect request would never be read.
            self.response.respondWithProblem(
                .badRequest,
                detail:
                    "\(self.kind.name) does not switch protocols; WebSocket clients connect to \(RelayBackend.websocketPath)"
            )
            return DiscardingBodyReceiver.shared
        }
        switch (self.kind, self.request.head.method) {
        case (.sse, .GET), (_, .POST):
            return self
        default:
            self.response.respondWithProblem(.methodNotAllowed, detail: self.kind.methodsDetail)
            return DiscardingBodyReceiver.shared
        }
    }

    func receiveBody(_ buffer: ByteBuffer) {
        guard !self.refused else { return }
        guard self.body.readableBytes + buffer.readableBytes <= self.relay.configuration.maxMessageBytes else {
            self.refused = true
            self.body = ByteBuffer()
            self.response.respondWithProblem(
                .payloadTooLarge,
                detail:
                    "\(self.kind.name): the connect request is over maxMessageBytes (\(self.relay.configuration.maxMessageBytes) bytes)"
            )
            return
        }
        var buffer = buffer
        self.body.writeBuffer(&buffer)
    }

    func receiveEnd() {
        guard !self.refused else { return }
        let params: WireJSON
        switch self.connectRequest() {
        case .success(let value): params = value
        case .failure(let problem):
            self.response.respondWithProblem(.badRequest, detail: "\(self.kind.name): \(problem.detail)")
            return
        }
        let connection = RelayConnection(
            relay: self.relay,
            hub: self.relay.hub.hub(for: self.request.eventLoop),
            transport: UniStreamTransport(response: self.response, kind: self.kind),
            identity: self.request.identity,
            format: .json,
            logger: self.request.logger
        )
        self.connection = connection
        connection.attach()
        // Id 0: a uni-directional client gets no replies; the connect result comes as a push.
        connection.connect(id: 0, params: params)
    }

    /// The client went away (or the gateway cut the request): the connection lets go of
    /// everything it holds.
    func cancel() {
        guard let connection = self.connection else { return }
        self.connection = nil
        connection.tearDown()
        connection.socketClosed()
    }

    /// What is wrong with the connect request, for the 400's detail.
    struct Problem: Error {
        let detail: String
    }

    /// The connect request, checked as the WebSocket's `connect` command is: a JSON object
    /// (`null` or nothing is an empty one, as Centrifugo takes it) whose known fields have
    /// their protocol types.
    func connectRequest() -> Result<WireJSON, Problem> {
        let source: String
        let text: [UInt8]
        if self.request.head.method == .GET {
            source = "the \(Self.connectParameter) query parameter"
            guard let value = Self.queryValue(Self.connectParameter, in: self.request.query) else {
                return .success(.object([:]))
            }
            guard let decoded = value else {
                return .failure(Problem(detail: "\(source) is not percent-encoded UTF-8"))
            }
            text = Array(decoded.utf8)
        } else {
            source = "the body"
            text = Array(self.body.readableBytesView)
        }
        if text.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) { return .success(.object([:])) }
        let parsed: WireJSON
        do {
            parsed = try WireJSON.parse(text)
        } catch {
            return .failure(Problem(detail: "\(source) is not JSON: \(error)"))
        }
        switch parsed {
        case .null: return .success(.object([:]))
        case .object: break
        default:
            return .failure(
                Problem(detail: "\(source) must be a connect request (a JSON object), found \(parsed.typeName)")
            )
        }
        if let error = CommandParameters.typeError(method: "connect", params: parsed) {
            return .failure(Problem(detail: "\(source): \(error.message)"))
        }
        return .success(parsed)
    }

    /// The form-decoded value of query parameter `name`: nil when absent, `.some(nil)` when it
    /// is not valid percent-encoded UTF-8.
    static func queryValue(_ name: String, in query: String?) -> String?? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.first.map(String.init) == name else { continue }
            let raw = parts.count > 1 ? String(parts[1]) : ""
            return .some(raw.replacingOccurrences(of: "+", with: " ").removingPercentEncoding)
        }
        return nil
    }
}
