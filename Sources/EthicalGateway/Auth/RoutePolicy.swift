import Foundation
import NIOHTTP1

/// A route's `auth` settings, compiled: where its token comes from, what the token must grant
/// and which claims reach the backend.
struct RoutePolicy: Sendable {
    let issuerNames: Set<String>
    /// The issuers in the order the route lists them.
    let issuerOrder: [String]
    let anonymous: Bool
    let scopes: [String]
    let claims: [(name: String, rule: ClaimRule)]
    let cookie: String?
    let queryParameter: String?
    let claimHeaders: [(header: String, claim: String)]
    let payloadHeader: String?
    let forwardAuthorization: Bool
    let realm: String

    init(_ configuration: RouteAuthConfiguration) {
        self.issuerNames = Set(configuration.issuers)
        self.issuerOrder = configuration.issuers
        self.anonymous = configuration.anonymous
        self.scopes = configuration.scopes
        self.claims = configuration.claims.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        self.cookie = configuration.cookie
        self.queryParameter = configuration.queryParameter
        self.claimHeaders = configuration.claimHeaders.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        self.payloadHeader = configuration.payloadHeader
        self.forwardAuthorization = configuration.forwardAuthorization
        self.realm = configuration.realm
    }

    /// The bearer token from `Authorization` (or the configured cookie); `nil` when there is
    /// none. Several `Authorization` headers are a malformed request (RFC 6750 §3.1).
    func token(in headers: HTTPHeaders) -> Result<String?, TokenRefusal> {
        // One field without a comma is the common case: NIO's canonical form splits and trims
        // the value character by character, which costs microseconds on a long token.
        let fields = headers["authorization"]
        let authorization =
            fields.count == 1 && !Self.containsComma(fields[0])
            ? [Substring(fields[0])] : headers[canonicalForm: "authorization"]
        if authorization.count > 1 {
            return .failure(TokenRefusal(.invalidRequest, "more than one Authorization header"))
        }
        if let value = authorization.first, let token = Self.bearerToken(in: value) {
            return token.isEmpty ? .failure(TokenRefusal(.invalidRequest, "empty bearer token")) : .success(token)
        }
        if let cookie = self.cookie {
            for header in headers[canonicalForm: "cookie"] {
                for pair in header.split(separator: ";") {
                    let pair = pair.trimmingCharacters(in: .whitespaces)
                    if pair.hasPrefix(cookie + "="), pair.count > cookie.count + 1 {
                        return .success(String(pair.dropFirst(cookie.count + 1)))
                    }
                }
            }
        }
        return .success(nil)
    }

    /// Whether `value` holds a comma. A header's value is a native string, so this scans its
    /// contiguous bytes with `memchr`: the generic `utf8.contains` walked a token of 600 bytes
    /// in 15,000 instructions, 10% of an authenticated request (callgrind, `callgrind-tls-jwt.sh`).
    static func containsComma(_ value: String) -> Bool {
        let comma = UInt8(ascii: ",")
        if let found = value.utf8.withContiguousStorageIfAvailable({ bytes in
            !bytes.isEmpty && memchr(bytes.baseAddress!, Int32(comma), bytes.count) != nil
        }) {
            return found
        }
        return value.utf8.contains(comma)
    }

    /// The credentials of a `Bearer` Authorization value (the scheme in any case, RFC 9110
    /// §11.1) without surrounding spaces and tabs; `nil` for another scheme.
    ///
    /// Works on the UTF-8 bytes: this runs on every authenticated request, and character-wise
    /// counting and Foundation's `trimmingCharacters(in:)` on a token of several hundred bytes
    /// cost tens of microseconds (measured in `Benchmarks/`, see BENCHMARKS.md).
    static func bearerToken(in value: Substring) -> String? {
        // A header's value is a native string: its bytes are contiguous, and scanning them
        // through a buffer is several times cheaper than `Substring.UTF8View` indices.
        if let token = value.utf8.withContiguousStorageIfAvailable(Self.bearerToken(inBytes:)) { return token }
        return Array(value.utf8).withUnsafeBufferPointer(Self.bearerToken(inBytes:))
    }

    private static func bearerToken(inBytes bytes: UnsafeBufferPointer<UInt8>) -> String? {
        let space = UInt8(ascii: " ")
        let tab = UInt8(ascii: "\t")
        var start = 0
        while start < bytes.count, bytes[start] == space { start += 1 }
        let scheme = "bearer ".utf8
        guard bytes.count - start > scheme.count else { return nil }
        for expected in scheme {
            let byte = bytes[start]
            guard byte == expected || (expected >= UInt8(ascii: "a") && byte | 0x20 == expected) else { return nil }
            start += 1
        }
        var end = bytes.count
        while start != end, bytes[start] == space || bytes[start] == tab { start += 1 }
        while start != end, bytes[end - 1] == space || bytes[end - 1] == tab { end -= 1 }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
    }

    /// The query with the token parameter taken out, and the token it carried (`nil` when the
    /// parameter was empty).
    struct QueryToken {
        let token: String?
        let uri: String
        let query: String?
    }

    /// Takes the token out of the query, if the policy reads one: every pair whose name is the
    /// parameter's, in any case and percent-encoding, is removed from the request target (so no
    /// spelling of it reaches the backend or the logs). More than one such pair, or a value that
    /// is not percent-encoded UTF-8, is a malformed request: a backend reading the last value,
    /// or names case-insensitively, would otherwise see a token the gateway never checked.
    /// `nil` when the query holds no such pair.
    func tokenFromQuery(_ request: GatewayRequest) -> Result<QueryToken, TokenRefusal>? {
        guard let name = self.queryParameter, let query = request.query else { return nil }
        var values: [Substring] = []
        var kept: [Substring] = []
        for pair in query.split(separator: "&", omittingEmptySubsequences: false) {
            let separator = pair.firstIndex(of: "=") ?? pair.endIndex
            let pairName = pair[..<separator]
            let decodedName = RequestPath.percentDecode(pairName) ?? String(pairName)
            if decodedName.lowercased() == name.lowercased() {
                values.append(separator == pair.endIndex ? "" : pair[pair.index(after: separator)...])
            } else {
                kept.append(pair)
            }
        }
        guard let value = values.first else { return nil }
        guard values.count == 1 else {
            return .failure(TokenRefusal(.invalidRequest, "more than one \(name) query parameter"))
        }
        guard let token = RequestPath.percentDecode(value) else {
            return .failure(TokenRefusal(.invalidRequest, "the \(name) query parameter is not percent-encoded UTF-8"))
        }
        let remaining = kept.isEmpty ? nil : kept.joined(separator: "&")
        let uri = request.path + (remaining.map { "?" + $0 } ?? "")
        return .success(QueryToken(token: token.isEmpty ? nil : token, uri: uri, query: remaining))
    }

    /// Why the verified token may not use this route, or `nil` when it may.
    func check(_ token: VerifiedToken) -> TokenRefusal? {
        guard self.issuerNames.contains(token.issuerName) else {
            return .invalid(.issuer, "tokens from this issuer are not accepted here")
        }
        let missing = self.scopes.filter { !token.scopes.contains($0) }
        if !missing.isEmpty {
            let needed = self.scopes.joined(separator: " ")
            return TokenRefusal(
                .insufficientScope(scope: needed),
                "the token lacks the scope\(missing.count > 1 ? "s" : "") \(missing.joined(separator: " "))"
            )
        }
        for (name, rule) in self.claims where !Self.holds(rule, token.claim(name)) {
            return TokenRefusal(.insufficientScope(scope: nil), "claim \(name) does not have an accepted value")
        }
        return nil
    }

    private static func holds(_ rule: ClaimRule, _ value: JSONValue?) -> Bool {
        guard let value else { return false }
        switch rule {
        case .equals(let expected): return value == expected
        case .oneOf(let accepted): return accepted.contains(value)
        case .contains(let element):
            switch value {
            case .array(let elements): return elements.contains(element)
            case .string(let words):
                guard case .string(let word) = element else { return false }
                return words.split(separator: " ").contains(Substring(word))
            default: return false
            }
        }
    }

    /// Sets the claim headers (and the payload header) and drops `Authorization` if asked to.
    func forward(_ token: VerifiedToken, headers: inout HTTPHeaders) {
        for (header, claim) in self.claimHeaders {
            guard let value = token.claim(claim), let rendered = Self.headerValue(value) else { continue }
            headers.add(name: header, value: rendered)
        }
        if let payloadHeader = self.payloadHeader {
            headers.add(name: payloadHeader, value: String(token.encodedPayload))
        }
        if !self.forwardAuthorization {
            headers.remove(name: "authorization")
        }
    }

    /// A claim as a header value: strings as they are, arrays as comma-separated lists, objects
    /// as JSON; control characters removed. `nil` for `null` and empty results.
    static func headerValue(_ value: JSONValue) -> String? {
        let text: String
        switch value {
        case .null: return nil
        case .string(let string): text = string
        case .bool(let bool): text = bool ? "true" : "false"
        case .number(let number):
            text = number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        case .array(let elements):
            text = elements.compactMap { element -> String? in
                if case .string(let string) = element { return string }
                return Self.json(element)
            }.joined(separator: ", ")
        case .object: text = Self.json(value) ?? ""
        }
        let cleaned = String(
            String.UnicodeScalarView(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F })
        )
        return cleaned.isEmpty ? nil : cleaned
    }

    private static func json(_ value: JSONValue) -> String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) }
    }
}
