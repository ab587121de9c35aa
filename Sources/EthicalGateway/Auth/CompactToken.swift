import Foundation

/// A JWS in compact serialization, split and its header and claims decoded, before any
/// signature check: what the gateway decides from the token's own words (which issuer, which
/// key, which algorithm) and what it refuses outright.
struct CompactToken: Sendable {
    let text: String
    let header: [String: JSONValue]
    let claims: [String: JSONValue]
    let algorithm: JWTAlgorithmName
    let kid: String?

    /// Header parameters this gateway understands when a token lists them in `crit`. None: it
    /// implements no JWS extension, so any `crit` is refused (RFC 7515 §4.1.11).
    static let understoodCritical: Set<String> = []

    /// Splits and decodes `text`, refusing malformed tokens and headers that are never accepted.
    init(_ text: String, maxBytes: Int) throws(TokenRefusal) {
        guard text.utf8.count <= maxBytes else {
            throw .invalid(.malformed, "the token is longer than \(maxBytes) bytes")
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw .invalid(
                .malformed,
                parts.count == 5 ? "encrypted tokens (JWE) are not accepted" : "the token is not a JWS (three parts)"
            )
        }
        guard let headerBytes = Base64URL.decode(parts[0]), let claimBytes = Base64URL.decode(parts[1]),
            Base64URL.decode(parts[2]) != nil
        else {
            throw .invalid(.malformed, "the token is not valid base64url")
        }
        let header = try Self.object(headerBytes, part: "header")
        let claims = try Self.object(claimBytes, part: "payload")
        guard case .string(let alg)? = header["alg"] else {
            throw .invalid(.malformed, "the token header has no \"alg\"")
        }
        if alg.lowercased() == "none" {
            throw .invalid(.algorithm, "unsigned tokens (alg none) are never accepted")
        }
        guard let algorithm = JWTAlgorithmName(rawValue: alg) else {
            throw .invalid(.algorithm, "algorithm \(alg) is not supported")
        }
        for source in ["jku", "x5u", "jwk", "x5c"] where header[source] != nil {
            throw .invalid(
                .header,
                "the token header names its own key (\"\(source)\"); keys come only from the issuer"
            )
        }
        if let critical = header["crit"] {
            guard case .array(let names) = critical, !names.isEmpty else {
                throw .invalid(.malformed, "the token header's \"crit\" is not a non-empty array")
            }
            for name in names {
                guard case .string(let name) = name, Self.understoodCritical.contains(name) else {
                    let shown = name.stringValue.map { "\"\($0)\"" } ?? name.kindDescription
                    throw .invalid(.header, "the token header has an unsupported critical parameter \(shown)")
                }
            }
        }
        let kid: String?
        switch header["kid"] {
        case nil, .null?: kid = nil
        case .string(let value)?: kid = value
        default: throw .invalid(.malformed, "the token header's \"kid\" is not a string")
        }
        self.text = text
        self.header = header
        self.claims = claims
        self.algorithm = algorithm
        self.kid = kid
    }

    /// Parses the header or the payload strictly (``JSONParser``).
    ///
    /// A member given twice is refused: JSON parsers disagree on which one counts (Foundation's
    /// `JSONDecoder`, which jwt-kit uses, keeps one; a backend reading the forwarded payload may
    /// keep the other), so `{"sub":"alice","sub":"admin"}` or `{"alg":"RS256","alg":"none"}` could
    /// mean one thing to the gateway's checks and another to whoever reads the token next.
    private static func object(_ bytes: Data, part: String) throws(TokenRefusal) -> [String: JSONValue] {
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes)
        } catch {
            let issues = (error as? ConfigValidationError)?.issues ?? []
            if let duplicate = issues.first(where: { $0.message.hasPrefix(JSONParser.duplicateKeyMessage) }) {
                let name = duplicate.path.hasPrefix("$.") ? String(duplicate.path.dropFirst(2)) : duplicate.path
                throw .invalid(.malformed, "the token \(part) has the member \"\(name)\" twice")
            }
            throw .invalid(.malformed, "the token \(part) is not a JSON object")
        }
        guard case .object(let members) = value else {
            throw .invalid(.malformed, "the token \(part) is not a JSON object")
        }
        return members
    }

    /// The `iss` claim, if it is a string.
    var issuer: String? { self.claims["iss"]?.stringValue }
}
