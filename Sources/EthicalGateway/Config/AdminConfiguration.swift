/// The admin API's listener and who may use it: the top-level `"admin"` object. Without it the
/// gateway runs no admin API.
///
/// ```json
/// "admin": { "port": 9901, "tokenFile": "/run/secrets/gateway_admin_token" }
/// ```
///
/// Every request presents `Authorization: Bearer <token>`: the content of ``tokenFile``, or a JWT
/// of one of ``issuers`` granting ``scope``. With neither configured, the gateway reads (and on
/// first start creates) a random token in `<stateDirectory>/admin-token`, so the API is never
/// open; on an address that is not loopback, one of the two must be configured.
public struct AdminConfiguration: Sendable, Decodable {
    /// The address the admin listener binds; default `127.0.0.1`.
    public var address: String = "127.0.0.1"
    /// The admin listener's port; default `9901` (`0` binds an ephemeral port).
    public var port: Int = 9901
    /// A file holding the admin token (a Docker secret, say), relative to the config's folder;
    /// surrounding whitespace is ignored; at least 16 characters.
    public var tokenFile: String?
    /// Names under `$.issuers` whose JWTs may use the admin API, when they grant ``scope``.
    public var issuers: [String] = []
    /// The scope an admin JWT must grant; default `gateway:admin`.
    public var scope: String = "gateway:admin"

    /// Whether an operator configured authentication (else the generated token is used).
    public var hasConfiguredAuthentication: Bool { self.tokenFile != nil || !self.issuers.isEmpty }

    enum CodingKeys: String, CodingKey { case address, port, tokenFile, issuers, scope }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let address = try container.decodeIfPresent(String.self, forKey: .address) {
            guard isIPAddress(address) else {
                throw decoder.invalidValue(
                    at: container.codingPath + [CodingKeys.address],
                    "expected an IPv4 or IPv6 address such as \"127.0.0.1\", found \"\(address)\""
                )
            }
            self.address = address
        }
        if let port = try container.decodeIfPresent(Int.self, forKey: .port) {
            guard (0...65535).contains(port) else {
                throw decoder.invalidValue(
                    at: container.codingPath + [CodingKeys.port],
                    "expected a port between 0 and 65535, found \(port)"
                )
            }
            self.port = port
        }
        self.tokenFile = try container.decodeIfPresent(String.self, forKey: .tokenFile)
        self.issuers = try container.decodeIfPresent([String].self, forKey: .issuers) ?? []
        if let scope = try container.decodeIfPresent(String.self, forKey: .scope) {
            guard !scope.isEmpty, !scope.contains(" ") else {
                throw decoder.invalidValue(
                    at: container.codingPath + [CodingKeys.scope],
                    "expected one scope without spaces, found \"\(scope)\""
                )
            }
            self.scope = scope
        }
        if !isLoopbackAddress(self.address) && !self.hasConfiguredAuthentication {
            throw decoder.invalidValue(
                at: container.codingPath,
                "the admin API would listen on \(self.address), which is not a loopback address, without "
                    + "authentication; set \"tokenFile\" or \"issuers\" (or listen on 127.0.0.1)"
            )
        }
    }
}

/// Whether `address` (an IP literal) is a loopback address: 127.0.0.0/8 or ::1.
func isLoopbackAddress(_ address: String) -> Bool {
    address.hasPrefix("127.") || address == "::1" || address == "0:0:0:0:0:0:0:1"
}

extension Decoder {
    /// A decoding error about the value at `codingPath`, reported with its JSON path.
    func invalidValue(at codingPath: [any CodingKey], _ message: String) -> DecodingError {
        DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: message))
    }
}
