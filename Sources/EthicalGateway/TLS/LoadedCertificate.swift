import Crypto
import Foundation
import NIOSSL
import X509

/// A certificate chain and key read from PEM files and checked: the key belongs to the leaf,
/// and the names it answers for are known.
struct LoadedCertificate: Sendable {
    let chain: [NIOSSLCertificate]
    let key: NIOSSLPrivateKey
    /// Lower-cased names (`example.com`, `*.example.com`) this certificate is selected for.
    let serverNames: [String]
    /// SHA-256 of the leaf's DER encoding, as colon-separated hex (what `openssl x509 -fingerprint -sha256` prints).
    let fingerprint: String
    let notValidAfter: Date

    /// Reads and checks one configured certificate.
    ///
    /// - Parameter path: the JSON path of the certificate entry, for errors.
    static func load(
        certificateFile: URL,
        keyFile: URL,
        serverNames: [String]?,
        path: String
    ) throws -> LoadedCertificate {
        let certificateText = Result {
            try readFile(certificateFile, path: "\(path).certificateFile", what: "certificate")
        }
        let keyText = Result { try readFile(keyFile, path: "\(path).keyFile", what: "private key") }
        guard case .success(let certificatePEM) = certificateText, case .success(let keyPEM) = keyText else {
            // Report both files when both are unusable.
            let issues = [certificateText, keyText].compactMap { result -> ConfigIssue? in
                guard case .failure(let error as ConfigIssueError) = result else { return nil }
                return error.issue
            }
            throw ConfigValidationError(issues)
        }

        let chain: [NIOSSLCertificate]
        let parsedLeaf: Certificate
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8))
            guard !chain.isEmpty else { throw CertificateFileError("no certificate found") }
            // The file is a chain (leaf first, then intermediates): the leaf is its first certificate.
            parsedLeaf = try Certificate(derEncoded: try chain[0].toDERBytes())
        } catch {
            throw ConfigIssueError(
                ConfigIssue(
                    path: "\(path).certificateFile",
                    message: "\(certificateFile.path) does not hold a PEM certificate (\(error))"
                )
            )
        }
        let key: NIOSSLPrivateKey
        let parsedKey: Certificate.PrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
            parsedKey = try Certificate.PrivateKey(pemEncoded: keyPEM)
        } catch {
            throw ConfigIssueError(
                ConfigIssue(
                    path: "\(path).keyFile",
                    message: "\(keyFile.path) does not hold a PEM private key (RSA, P-256 or P-384): \(error)"
                )
            )
        }
        guard parsedKey.publicKey == parsedLeaf.publicKey else {
            throw ConfigIssueError(
                ConfigIssue(
                    path: "\(path).keyFile",
                    message:
                        "the private key in \(keyFile.path) does not match the certificate in \(certificateFile.path)"
                )
            )
        }

        var names: [String] = []
        if let configured = serverNames {
            names = configured.map { $0.lowercased() }
        } else if let alternativeNames = try? parsedLeaf.extensions.subjectAlternativeNames {
            for name in alternativeNames {
                if case .dnsName(let dnsName) = name { names.append(dnsName.lowercased()) }
            }
        }
        let der = try chain[0].toDERBytes()
        let fingerprint = SHA256.hash(data: der).map { String(format: "%02X", $0) }.joined(separator: ":")
        return LoadedCertificate(
            chain: chain,
            key: key,
            serverNames: names,
            fingerprint: fingerprint,
            notValidAfter: parsedLeaf.notValidAfter
        )
    }

    private static func readFile(_ url: URL, path: String, what: String) throws -> String {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ConfigIssueError(ConfigIssue(path: path, message: "\(what) file \(url.path) does not exist"))
        }
        guard FileManager.default.isReadableFile(atPath: url.path),
            let data = FileManager.default.contents(atPath: url.path),
            let text = String(data: data, encoding: .utf8)
        else {
            throw ConfigIssueError(
                ConfigIssue(path: path, message: "\(what) file \(url.path) cannot be read (check its permissions)")
            )
        }
        return text
    }
}

private struct CertificateFileError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
