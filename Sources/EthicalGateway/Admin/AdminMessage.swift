public import Foundation
public import NIOHTTP1

/// A request to the admin API, read whole (admin bodies are configurations, a few KiB).
public struct AdminRequest: Sendable {
    public var method: HTTPMethod
    /// The path, without the query.
    public var path: String
    public var headers: HTTPHeaders
    public var body: Data

    public init(method: HTTPMethod, path: String, headers: HTTPHeaders, body: Data) {
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
    }
}

/// An answer of the admin API.
public struct AdminResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: Data

    /// A JSON answer.
    static func json(_ status: HTTPResponseStatus, _ value: JSONValue, headers: HTTPHeaders = [:]) -> AdminResponse {
        var headers = headers
        headers.replaceOrAdd(name: "content-type", value: "application/json")
        return AdminResponse(status: status, headers: headers, body: value.encoded(pretty: true))
    }

    /// An RFC 9457 problem document; `issues` become its `errors` member (each with its JSON path).
    static func problem(
        _ status: HTTPResponseStatus,
        _ detail: String,
        requestID: String,
        issues: [ConfigIssue] = [],
        headers: HTTPHeaders = [:]
    ) -> AdminResponse {
        var members: [String: JSONValue] = [
            "type": .string("about:blank"), "title": .string(status.reasonPhrase),
            "status": .number(Double(status.code)), "detail": .string(detail), "requestId": .string(requestID),
        ]
        if !issues.isEmpty {
            members["errors"] = .array(
                issues.map { .object(["path": .string($0.path), "message": .string($0.message)]) }
            )
        }
        var headers = headers
        headers.replaceOrAdd(name: "content-type", value: "application/problem+json")
        return AdminResponse(status: status, headers: headers, body: JSONValue.object(members).encoded(pretty: true))
    }
}
