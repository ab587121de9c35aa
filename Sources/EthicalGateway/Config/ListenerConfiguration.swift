import Foundation

/// One socket the gateway accepts connections on: plain HTTP, HTTPS, or an HTTP -> HTTPS redirect.
public struct ListenerConfiguration: Sendable, Decodable {
    /// Name used in logs and errors. Default `"<address>:<port>"`.
    public var name: String
    /// IP address to bind. Default `"0.0.0.0"` (all IPv4 interfaces); `"127.0.0.1"` for loopback only.
    public var address: String
    /// TCP port, 0 to 65535; 0 picks a free port (tests use that).
    public var port: Int
    /// Present for an HTTPS listener. `{}` uses a development certificate made at start-up.
    public var tls: ListenerTLSConfiguration?
    /// Present for a listener that answers every request with a 308 redirect to HTTPS.
    public var redirectToHTTPS: RedirectToHTTPSConfiguration?
    /// Position in the `listeners` array.
    public internal(set) var index: Int = 0

    public var jsonPath: String { "$.listeners[\(self.index)]" }

    public init(
        name: String? = nil,
        address: String = "0.0.0.0",
        port: Int,
        tls: ListenerTLSConfiguration? = nil,
        redirectToHTTPS: RedirectToHTTPSConfiguration? = nil
    ) {
        self.name = name ?? "\(address):\(port)"
        self.address = address
        self.port = port
        self.tls = tls
        self.redirectToHTTPS = redirectToHTTPS
    }

    enum CodingKeys: String, CodingKey { case name, address, port, tls, redirectToHTTPS }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.address = try container.decodeIfPresent(String.self, forKey: .address) ?? "0.0.0.0"
        if !isIPAddress(self.address) {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: container.codingPath + [CodingKeys.address],
                    debugDescription:
                        "expected an IPv4 or IPv6 address such as \"127.0.0.1\", found \"\(self.address)\""
                )
            )
        }
        self.port = try container.decode(Int.self, forKey: .port)
        if !(0...65535).contains(self.port) {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: container.codingPath + [CodingKeys.port],
                    debugDescription: "expected a port between 0 and 65535, found \(self.port)"
                )
            )
        }
        self.name = try container.decodeIfPresent(String.self, forKey: .name) ?? "\(self.address):\(self.port)"
        self.tls = try container.decodeIfPresent(ListenerTLSConfiguration.self, forKey: .tls)
        self.redirectToHTTPS = try container.decodeIfPresent(
            RedirectToHTTPSConfiguration.self,
            forKey: .redirectToHTTPS
        )
        if self.tls != nil && self.redirectToHTTPS != nil {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: container.codingPath + [CodingKeys.redirectToHTTPS],
                    debugDescription:
                        "a redirect listener serves plain HTTP; remove either \"tls\" or \"redirectToHTTPS\""
                )
            )
        }
    }
}

/// TLS settings of an HTTPS listener.
public struct ListenerTLSConfiguration: Sendable, Decodable {
    /// Certificates offered by this listener. The client's SNI name picks one (exact names
    /// first, then `*.example.com` wildcards); the first certificate is the default for clients
    /// that send no name or an unknown one. Empty: a development certificate is generated.
    public var certificates: [CertificateConfiguration]
    /// Lowest TLS version accepted: `"1.2"` (default, Mozilla "intermediate") or `"1.3"`.
    public var minimumVersion: TLSVersionSetting
    /// Offer HTTP/2 through ALPN. Default `true`.
    public var http2: Bool
    /// Send `Strict-Transport-Security` on every response of this listener, so browsers use
    /// HTTPS only for the host from then on (RFC 6797). Default: not sent.
    public var hsts: HSTSConfiguration?

    public init(
        certificates: [CertificateConfiguration] = [],
        minimumVersion: TLSVersionSetting = .tls12,
        http2: Bool = true,
        hsts: HSTSConfiguration? = nil
    ) {
        self.certificates = certificates
        self.minimumVersion = minimumVersion
        self.http2 = http2
        self.hsts = hsts
    }

    enum CodingKeys: String, CodingKey { case certificates, minimumVersion, http2, hsts }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.certificates = try container.decodeIfPresent([CertificateConfiguration].self, forKey: .certificates) ?? []
        self.minimumVersion = try container.decodeIfPresent(TLSVersionSetting.self, forKey: .minimumVersion) ?? .tls12
        self.http2 = try container.decodeIfPresent(Bool.self, forKey: .http2) ?? true
        self.hsts = try container.decodeIfPresent(HSTSConfiguration.self, forKey: .hsts)
    }
}

/// The `Strict-Transport-Security` policy of a TLS listener.
///
/// ```json
/// "hsts": { "maxAgeSeconds": 31536000, "includeSubDomains": true }
/// ```
public struct HSTSConfiguration: Sendable, Decodable, Hashable {
    /// How long browsers remember to use HTTPS only, in seconds. Default 31536000 (one year);
    /// 0 tells browsers to forget the policy.
    public var maxAgeSeconds: Int
    /// The policy covers every subdomain too. Default `false`.
    public var includeSubDomains: Bool
    /// Ask to be listed in browsers' preload lists (needs `includeSubDomains` and a max age of
    /// at least a year). Default `false`.
    public var preload: Bool

    enum CodingKeys: String, CodingKey { case maxAgeSeconds, includeSubDomains, preload }

    public init(maxAgeSeconds: Int = 31_536_000, includeSubDomains: Bool = false, preload: Bool = false) {
        self.maxAgeSeconds = maxAgeSeconds
        self.includeSubDomains = includeSubDomains
        self.preload = preload
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.maxAgeSeconds = try container.decodeIfPresent(Int.self, forKey: .maxAgeSeconds) ?? 31_536_000
        self.includeSubDomains = try container.decodeIfPresent(Bool.self, forKey: .includeSubDomains) ?? false
        self.preload = try container.decodeIfPresent(Bool.self, forKey: .preload) ?? false
        if self.maxAgeSeconds < 0 {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: container.codingPath + [CodingKeys.maxAgeSeconds],
                    debugDescription: "expected a number of seconds >= 0"
                )
            )
        }
        if self.preload && (!self.includeSubDomains || self.maxAgeSeconds < 31_536_000) {
            throw decoder.invalid(
                "\"preload\" needs \"includeSubDomains\": true and \"maxAgeSeconds\" of at least 31536000 "
                    + "(the preload lists refuse anything less)"
            )
        }
    }

    /// The header value, e.g. `max-age=31536000; includeSubDomains`.
    public var headerValue: String {
        var value = "max-age=\(self.maxAgeSeconds)"
        if self.includeSubDomains { value += "; includeSubDomains" }
        if self.preload { value += "; preload" }
        return value
    }
}

/// The lowest TLS protocol version a listener accepts.
public enum TLSVersionSetting: String, ConfigEnum {
    case tls12 = "1.2"
    case tls13 = "1.3"
}

/// A certificate chain and its private key, both PEM files.
public struct CertificateConfiguration: Sendable, Decodable {
    /// PEM file with the leaf certificate first, then intermediates. Relative to the config folder.
    public var certificateFile: String
    /// PEM file with the private key (RSA, P-256 or P-384). Relative to the config folder.
    public var keyFile: String
    /// Names this certificate answers for (`"example.com"`, `"*.example.com"`). Default: the
    /// DNS names in the certificate's subject alternative names.
    public var serverNames: [String]?

    public init(certificateFile: String, keyFile: String, serverNames: [String]? = nil) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serverNames = serverNames
    }
}

/// Where a redirect listener sends clients.
public struct RedirectToHTTPSConfiguration: Sendable, Decodable {
    /// The HTTPS port to redirect to. Default 443 (then omitted from the URL).
    public var port: Int

    public init(port: Int = 443) {
        self.port = port
    }

    enum CodingKeys: String, CodingKey { case port }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.port = try container.decodeIfPresent(Int.self, forKey: .port) ?? 443
        if !(1...65535).contains(self.port) {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: container.codingPath + [CodingKeys.port],
                    debugDescription: "expected a port between 1 and 65535"
                )
            )
        }
    }
}

func isIPAddress(_ string: String) -> Bool {
    var v4 = in_addr()
    var v6 = in6_addr()
    return inet_pton(AF_INET, string, &v4) == 1 || inet_pton(AF_INET6, string, &v6) == 1
}
