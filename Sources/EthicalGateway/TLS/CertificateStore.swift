import Foundation
import Logging
import NIOSSL

/// The certificates of one HTTPS listener, chosen per handshake by the client's SNI name. A
/// configuration reload reads the files into a new store, and the listener's new connections use
/// it; open connections keep the certificate they were handshaken with.
///
/// Selection: an exact name, then a `*.` wildcard for the name's first label, then the first
/// configured certificate. A reload builds the whole new set first; if any file fails, the
/// reload fails and the current store stays in service.
final class CertificateStore: Sendable {
    /// Where one certificate comes from.
    struct Source: Sendable {
        var certificateFile: URL
        var keyFile: URL
        var serverNames: [String]?
        /// JSON path of the certificate entry, for errors.
        var path: String
    }

    /// The certificates in service, indexed for selection.
    struct Selection: Sendable {
        var exact: [String: LoadedCertificate] = [:]
        var wildcard: [String: LoadedCertificate] = [:]
        var fallback: LoadedCertificate
        var all: [LoadedCertificate]

        init(_ certificates: [LoadedCertificate]) {
            self.fallback = certificates[0]
            self.all = certificates
            // Earlier certificates win when two claim the same name.
            for certificate in certificates.reversed() {
                for name in certificate.serverNames {
                    if name.hasPrefix("*.") {
                        self.wildcard[String(name.dropFirst(2))] = certificate
                    } else {
                        self.exact[name] = certificate
                    }
                }
            }
        }

        func select(serverName: String?) -> LoadedCertificate {
            guard let name = serverName?.lowercased() else { return self.fallback }
            if let certificate = self.exact[name] { return certificate }
            if let suffix = wildcardSuffix(of: name), let certificate = self.wildcard[String(suffix)] {
                return certificate
            }
            return self.fallback
        }
    }

    let listenerName: String
    private let selection: Selection

    /// Loads every source; throws ``ConfigValidationError`` listing each file that failed.
    init(listenerName: String, sources: [Source]) throws {
        precondition(!sources.isEmpty, "a certificate store needs at least one certificate")
        self.listenerName = listenerName
        self.selection = Selection(try Self.loadAll(sources))
    }

    private static func loadAll(_ sources: [Source]) throws -> [LoadedCertificate] {
        var loaded: [LoadedCertificate] = []
        var issues: [ConfigIssue] = []
        for source in sources {
            do {
                loaded.append(
                    try LoadedCertificate.load(
                        certificateFile: source.certificateFile,
                        keyFile: source.keyFile,
                        serverNames: source.serverNames,
                        path: source.path
                    )
                )
            } catch let error as ConfigIssueError {
                issues.append(error.issue)
            } catch let error as ConfigValidationError {
                issues += error.issues
            }
        }
        if !issues.isEmpty { throw ConfigValidationError(issues) }
        return loaded
    }

    /// The certificate for a handshake.
    func select(serverName: String?) -> LoadedCertificate {
        self.selection.select(serverName: serverName)
    }

    /// The certificates in service.
    var certificates: [LoadedCertificate] {
        self.selection.all
    }

    /// A server TLS configuration for this listener: TLS 1.2 and 1.3 only, Mozilla
    /// "intermediate" ciphers, ALPN, and the certificate chosen per handshake by SNI.
    func makeTLSConfiguration(minimumVersion: TLSVersionSetting, http2: Bool) -> TLSConfiguration {
        let initial = self.select(serverName: nil)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: initial.chain.map { .certificate($0) },
            privateKey: .privateKey(initial.key)
        )
        configuration.minimumTLSVersion = minimumVersion == .tls13 ? .tlsv13 : .tlsv12
        configuration.maximumTLSVersion = .tlsv13
        configuration.cipherSuites = Self.mozillaIntermediateCipherSuites
        configuration.applicationProtocols = http2 ? ["h2", "http/1.1"] : ["http/1.1"]
        configuration.sslContextCallback = { [self] values, promise in
            let certificate = self.select(serverName: values.serverHostname)
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = certificate.chain.map { .certificate($0) }
            override.privateKey = .privateKey(certificate.key)
            promise.succeed(override)
        }
        return configuration
    }

    /// TLS 1.2 suites of Mozilla's "intermediate" profile that BoringSSL offers (it has no
    /// finite-field DHE). TLS 1.3 suites are fixed by BoringSSL and all acceptable.
    static let mozillaIntermediateCipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")
}
