import Foundation
public import NIOCore
import NIOHTTP1

/// The admin API's endpoints (see `docs/admin-openapi.json`, served at `/openapi.json`):
///
/// - `GET /healthz` (alive) and `GET /readyz` (configuration loaded, listeners bound, backends
///   ready): open without a token, for orchestrators' probes; `GET /dashboard` (and its script),
///   a page holding no data, which reads the endpoints below with the operator's token;
/// - `GET /config` (with `ETag`), `PUT /config` (needs `If-Match`), `POST /config/validate`;
/// - `GET|PUT|DELETE /config/{routes|backends|filters|issuers}/{name}`;
/// - `POST /reload` (re-read the file); `GET /openapi.json`; `GET /metrics` (Prometheus text).
///
/// Every other request needs `Authorization: Bearer` with the admin token or a JWT of an admin
/// issuer granting the admin scope.
public struct AdminAPI: Sendable {
    let controller: ConfigController
    let server: GatewayServer

    public init(controller: ConfigController, server: GatewayServer) {
        self.controller = controller
        self.server = server
    }

    /// Answers one request; `eventLoop` is the admin connection's (JWT verification runs there).
    public func handle(_ request: AdminRequest, on eventLoop: any EventLoop) async -> AdminResponse {
        let requestID = RequestID.make(incoming: request.headers.first(name: "x-request-id"))
        var response = await self.route(request, requestID: requestID, on: eventLoop)
        response.headers.replaceOrAdd(name: "x-request-id", value: requestID)
        response.headers.replaceOrAdd(name: "cache-control", value: "no-store")
        return response
    }

    private func route(_ request: AdminRequest, requestID: String, on eventLoop: any EventLoop) async -> AdminResponse {
        let segments = request.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        switch segments {
        case ["healthz"]:
            return await Self.only([.GET, .HEAD], request, requestID) {
                .json(.ok, .object(["status": .string("alive")]))
            }
        case ["readyz"]:
            return await Self.only([.GET, .HEAD], request, requestID) { self.readiness() }
        case ["dashboard"]:
            // The page and its script hold no data: they read /config and /metrics with the
            // token the operator gives them.
            return await Self.only([.GET, .HEAD], request, requestID) {
                Self.asset(AdminDashboard.page, type: "text/html; charset=utf-8")
            }
        case ["dashboard.js"]:
            return await Self.only([.GET, .HEAD], request, requestID) {
                Self.asset(AdminDashboard.script, type: "text/javascript; charset=utf-8")
            }
        default:
            break
        }
        if let refusal = await self.authenticate(request, requestID: requestID, on: eventLoop) { return refusal }
        switch segments {
        case ["openapi.json"]:
            return await Self.only([.GET, .HEAD], request, requestID) {
                AdminResponse(
                    status: .ok,
                    headers: ["content-type": "application/json"],
                    body: Data((AdminOpenAPI.document + "\n").utf8)
                )
            }
        case ["metrics"]:
            return await Self.only([.GET, .HEAD], request, requestID) {
                AdminResponse(
                    status: .ok,
                    headers: ["content-type": "text/plain; version=0.0.4; charset=utf-8"],
                    body: Data(await self.server.metricsText().utf8)
                )
            }
        case ["config"]:
            switch request.method {
            case .GET, .HEAD:
                let current = await self.controller.current
                return AdminResponse(
                    status: .ok,
                    headers: ["content-type": "application/json", "etag": "\"\(current.version)\""],
                    body: current.data
                )
            case .PUT:
                let outcome = await self.controller.replace(
                    with: request.body,
                    ifMatch: request.headers.first(name: "if-match")
                )
                return self.answer(outcome, requestID: requestID)
            default:
                return Self.methodNotAllowed(["GET", "HEAD", "PUT"], requestID)
            }
        case ["config", "validate"]:
            guard request.method == .POST else { return Self.methodNotAllowed(["POST"], requestID) }
            switch await self.controller.validate(request.body) {
            case .success(let diff):
                return .json(.ok, .object(["valid": .bool(true), "changes": diff.json]))
            case .failure(let error):
                return .json(
                    .ok,
                    .object([
                        "valid": .bool(false),
                        "errors": .array(
                            error.issues.map { .object(["path": .string($0.path), "message": .string($0.message)]) }
                        ),
                    ])
                )
            }
        case ["reload"]:
            guard request.method == .POST else { return Self.methodNotAllowed(["POST"], requestID) }
            return self.answer(await self.controller.reloadFile(trigger: "admin"), requestID: requestID)
        default:
            break
        }
        if segments.count == 3, segments[0] == "config", let kind = ConfigObjectKind(rawValue: segments[1]) {
            let name = segments[2].removingPercentEncoding ?? segments[2]
            return await self.object(kind, name: name, request, requestID: requestID)
        }
        return .problem(
            .notFound,
            "no admin endpoint at \(request.path.prefix(200)); see /openapi.json",
            requestID: requestID
        )
    }

    private func object(
        _ kind: ConfigObjectKind,
        name: String,
        _ request: AdminRequest,
        requestID: String
    ) async
        -> AdminResponse
    {
        guard !name.isEmpty else {
            return .problem(.notFound, "the \(kind.singular) name is empty", requestID: requestID)
        }
        switch request.method {
        case .GET, .HEAD:
            guard let value = await self.controller.object(kind, named: name) else {
                return .problem(.notFound, "no \(kind.singular) named \"\(name)\"", requestID: requestID)
            }
            return .json(.ok, value, headers: ["etag": value.entityTag])
        case .PUT:
            let value: JSONValue
            do {
                value = try JSONValue.parse(request.body)
            } catch let error as ConfigValidationError {
                return .problem(
                    .unprocessableEntity,
                    "the body is not a JSON document",
                    requestID: requestID,
                    issues: error.issues
                )
            } catch {
                return .problem(.unprocessableEntity, "the body is not a JSON document", requestID: requestID)
            }
            let outcome = await self.controller.put(
                value,
                kind: kind,
                name: name,
                ifMatch: request.headers.first(name: "if-match")
            )
            switch outcome {
            case .success(let (applied, created)):
                let tag = await self.controller.object(kind, named: name)?.entityTag
                var response = AdminResponse.json(created ? .created : .ok, applied.json)
                if let tag { response.headers.add(name: "etag", value: tag) }
                return response
            case .failure(let refusal):
                return self.refusal(refusal, requestID: requestID)
            }
        case .DELETE:
            return self.answer(
                await self.controller.delete(kind: kind, name: name, ifMatch: request.headers.first(name: "if-match")),
                requestID: requestID
            )
        default:
            return Self.methodNotAllowed(["GET", "HEAD", "PUT", "DELETE"], requestID)
        }
    }

    private func answer(
        _ outcome: Result<ConfigController.Outcome, ConfigController.Refusal>,
        requestID: String
    )
        -> AdminResponse
    {
        switch outcome {
        case .success(let applied):
            return .json(.ok, applied.json, headers: ["etag": "\"\(applied.version)\""])
        case .failure(let refusal):
            return self.refusal(refusal, requestID: requestID)
        }
    }

    private func refusal(_ refusal: ConfigController.Refusal, requestID: String) -> AdminResponse {
        switch refusal {
        case .invalid(let error):
            return .problem(
                .unprocessableEntity,
                "the configuration is invalid (\(error.issues.count) error\(error.issues.count == 1 ? "" : "s")); nothing changed",
                requestID: requestID,
                issues: error.issues
            )
        case .stale(let current):
            return .problem(
                .preconditionFailed,
                "If-Match does not name the current version (\(current)); read it again and retry",
                requestID: requestID
            )
        case .preconditionRequired:
            return .problem(
                .preconditionRequired,
                "send If-Match with the ETag of what you read, so two changes cannot overwrite each other",
                requestID: requestID
            )
        case .notFound(let detail):
            return .problem(.notFound, detail, requestID: requestID)
        case .persistence(let detail):
            return .problem(.internalServerError, "\(detail); nothing changed", requestID: requestID)
        }
    }

    /// `/readyz`: 200 when the configuration is loaded, every listener bound and every backend
    /// ready; else 503 naming what is not.
    private func readiness() -> AdminResponse {
        let runtime = self.server.runtime
        var checks: [String: JSONValue] = ["config": .string(runtime.source.version)]
        var failing: [String] = []
        if self.server.isServing {
            checks["listeners"] = .string("bound")
        } else {
            checks["listeners"] = .string("not serving")
            failing.append("listeners are not serving")
        }
        var backends: [String: JSONValue] = [:]
        for (name, backend) in runtime.backends.sorted(by: { $0.key < $1.key }) {
            if backend.isReady {
                backends[name] = .string("ready")
            } else {
                backends[name] = .string("not ready: \(backend.readinessDetail)")
                failing.append("backend \(name) is not ready")
            }
        }
        checks["backends"] = .object(backends)
        checks["status"] = .string(failing.isEmpty ? "ready" : "not ready")
        if !failing.isEmpty { checks["failing"] = .array(failing.map(JSONValue.string)) }
        return .json(failing.isEmpty ? .ok : .serviceUnavailable, .object(checks))
    }

    /// `nil` when the request may use the API; else the 401 or 403 answer (RFC 6750).
    private func authenticate(
        _ request: AdminRequest,
        requestID: String,
        on eventLoop: any EventLoop
    ) async
        -> AdminResponse?
    {
        let runtime = self.server.runtime
        guard let access = runtime.adminAccess else {
            return .problem(
                .serviceUnavailable,
                "the configuration in service has no admin section",
                requestID: requestID
            )
        }
        let challenge = "Bearer realm=\"ethical-gateway-admin\""
        guard let token = AdminAccess.bearerToken(in: request.headers) else {
            return .problem(
                .unauthorized,
                "the admin API needs Authorization: Bearer with the admin token or an admin JWT",
                requestID: requestID,
                headers: ["www-authenticate": challenge]
            )
        }
        if access.acceptsToken(token) { return nil }
        if !access.issuers.isEmpty {
            let verified = try? await runtime.tokenVerifier.verify(
                token,
                issuers: access.issuers,
                on: eventLoop
            ).get()
            switch verified {
            case .success(let identity)?:
                if identity.scopes.contains(access.scope) { return nil }
                return .problem(
                    .forbidden,
                    "the token does not grant the scope \(access.scope)",
                    requestID: requestID,
                    headers: [
                        "www-authenticate": challenge + ", error=\"insufficient_scope\", scope=\"\(access.scope)\""
                    ]
                )
            case .failure(let refusal)?:
                return .problem(
                    .unauthorized,
                    "the token is not valid: \(refusal.description)",
                    requestID: requestID,
                    headers: ["www-authenticate": challenge + ", error=\"invalid_token\""]
                )
            case nil:
                break
            }
        }
        return .problem(
            .unauthorized,
            "the token is not the admin token",
            requestID: requestID,
            headers: ["www-authenticate": challenge + ", error=\"invalid_token\""]
        )
    }

    /// A static dashboard file, with a policy that lets it load only itself and talk only to
    /// this listener.
    private static func asset(_ text: String, type: String) -> AdminResponse {
        AdminResponse(
            status: .ok,
            headers: [
                "content-type": type,
                "content-security-policy":
                    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
                "x-content-type-options": "nosniff",
                "referrer-policy": "no-referrer",
            ],
            body: Data((text + "\n").utf8)
        )
    }

    /// `answer()` when the request's method is one of `methods`, else 405 with `Allow`.
    private static func only(
        _ methods: [HTTPMethod],
        _ request: AdminRequest,
        _ requestID: String,
        _ answer: () async -> AdminResponse
    ) async -> AdminResponse {
        guard methods.contains(request.method) else {
            return self.methodNotAllowed(methods.map(\.rawValue), requestID)
        }
        return await answer()
    }

    private static func methodNotAllowed(_ allowed: [String], _ requestID: String) -> AdminResponse {
        .problem(
            .methodNotAllowed,
            "allowed: \(allowed.joined(separator: ", "))",
            requestID: requestID,
            headers: ["allow": allowed.joined(separator: ", ")]
        )
    }
}
