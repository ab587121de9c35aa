import Crypto
public import Foundation
import NIOCore
import NIOHTTP1

/// Who may use the admin API under one configuration: the admin token and/or the issuers whose
/// JWTs grant the admin scope. Built with the runtime, so a reload that changes `admin` (or
/// the token file, re-read by every reload) applies to the next admin request.
public struct AdminAccess: Sendable {
    /// The token every request may present, when one is configured or generated.
    let token: String?
    /// Issuer names whose JWTs are accepted when they grant ``scope``.
    let issuers: [String]
    let scope: String
    /// Where the token was read from, for the log line at start.
    public let tokenPath: String?

    /// Reads (or creates) what `admin` names. With no authentication configured, the token is
    /// `<stateDirectory>/admin-token`, created with 32 random bytes (mode 0600) when `create`
    /// allows and the file does not exist yet.
    ///
    /// - Throws: ``ConfigIssueError`` at `$.admin.tokenFile` when the token cannot be read or is
    ///   shorter than 16 characters.
    static func load(
        _ admin: AdminConfiguration,
        configDirectory: URL,
        stateDirectory: URL,
        create: Bool
    ) throws -> AdminAccess {
        var token: String?
        var path: String?
        if let tokenFile = admin.tokenFile {
            let url = resolveConfigPath(tokenFile, relativeTo: configDirectory)
            // `validate` (create == false) checks a token file that exists; one that does not
            // exist yet (a secret mounted only where the gateway runs) is checked at start.
            if create || FileManager.default.fileExists(atPath: url.path) {
                token = try Self.readToken(url, jsonPath: "$.admin.tokenFile")
            }
            path = url.path
        } else if admin.issuers.isEmpty {
            let url = stateDirectory.appendingPathComponent("admin-token")
            if create && !FileManager.default.fileExists(atPath: url.path) {
                try Self.createToken(at: url, in: stateDirectory)
            }
            if create || FileManager.default.fileExists(atPath: url.path) {
                token = try Self.readToken(url, jsonPath: "$.admin")
            }
            path = url.path
        }
        return AdminAccess(token: token, issuers: admin.issuers, scope: admin.scope, tokenPath: path)
    }

    private static func readToken(_ url: URL, jsonPath: String) throws -> String {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw ConfigIssueError(ConfigIssue(path: jsonPath, message: "cannot read the admin token file \(url.path)"))
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.utf8.count >= 16 else {
            throw ConfigIssueError(
                ConfigIssue(path: jsonPath, message: "the admin token in \(url.path) is shorter than 16 characters")
            )
        }
        return token
    }

    private static func createToken(at url: URL, in directory: URL) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
            let token = Base64URL.encode(bytes)
            guard
                FileManager.default.createFile(
                    atPath: url.path,
                    contents: Data((token + "\n").utf8),
                    attributes: [.posixPermissions: 0o600]
                )
            else { throw CocoaError(.fileWriteUnknown) }
        } catch {
            throw ConfigIssueError(
                ConfigIssue(path: "$.admin", message: "cannot create the admin token file \(url.path): \(error)")
            )
        }
    }

    /// Whether `presented` is the admin token. Their SHA-256 digests are compared in constant
    /// time, so neither the content nor the length of the token leaks through timing.
    func acceptsToken(_ presented: String) -> Bool {
        guard let token = self.token else { return false }
        let expected = Array(SHA256.hash(data: Data(token.utf8)))
        let given = Array(SHA256.hash(data: Data(presented.utf8)))
        var difference: UInt8 = 0
        for index in expected.indices { difference |= expected[index] ^ given[index] }
        return difference == 0
    }

    /// Whether `headers` carry the admin token itself (not a JWT): such requests may send the
    /// large bodies configurations need before the API reads them.
    func carriesToken(_ headers: HTTPHeaders) -> Bool {
        Self.bearerToken(in: headers).map(self.acceptsToken) ?? false
    }

    /// The credentials of the request's `Authorization: Bearer` header, parsed as route auth
    /// parses them; `nil` when there is none, or more than one (which one counts would be a
    /// guess).
    static func bearerToken(in headers: HTTPHeaders) -> String? {
        let fields = headers["authorization"]
        guard fields.count == 1 else { return nil }
        return RoutePolicy.bearerToken(in: Substring(fields[0]))
    }
}
