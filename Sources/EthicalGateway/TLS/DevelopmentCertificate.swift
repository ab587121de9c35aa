import Crypto
import Foundation
import Logging
import SwiftASN1
import X509

/// The self-signed certificate an HTTPS listener uses when none is configured, the way Caddy's
/// `tls internal` works: made once, kept in the state folder so restarts (and browsers that
/// were told to trust it) keep the same one, and replaced when it nears expiry.
enum DevelopmentCertificate {
    static let certificateFileName = "development-certificate.pem"
    static let keyFileName = "development-key.pem"
    /// Validity of a new certificate.
    static let lifetime: TimeInterval = 365 * 24 * 3600
    /// A certificate closer than this to expiry is replaced at start-up.
    static let renewalWindow: TimeInterval = 14 * 24 * 3600

    /// The certificate and key files in `stateDirectory`, created when missing or near expiry.
    static func ensure(in stateDirectory: URL, logger: Logger) throws -> (certificateFile: URL, keyFile: URL) {
        let certificateFile = stateDirectory.appendingPathComponent(Self.certificateFileName)
        let keyFile = stateDirectory.appendingPathComponent(Self.keyFileName)
        if let existing = try? String(contentsOf: certificateFile, encoding: .utf8),
            let certificate = try? Certificate(pemEncoded: existing),
            FileManager.default.fileExists(atPath: keyFile.path),
            certificate.notValidAfter.timeIntervalSinceNow > Self.renewalWindow
        {
            return (certificateFile, keyFile)
        }
        do {
            try FileManager.default.createDirectory(at: stateDirectory, withIntermediateDirectories: true)
        } catch {
            throw ConfigIssueError(
                ConfigIssue(
                    path: "$.stateDirectory",
                    message: "cannot create the state folder \(stateDirectory.path): \(error.localizedDescription)"
                )
            )
        }
        let (certificatePEM, keyPEM) = try Self.make()
        // Write the key first with owner-only permissions, so it is never readable by others.
        guard
            FileManager.default.createFile(
                atPath: keyFile.path,
                contents: Data(keyPEM.utf8),
                attributes: [.posixPermissions: 0o600]
            ),
            FileManager.default.createFile(atPath: certificateFile.path, contents: Data(certificatePEM.utf8))
        else {
            throw ConfigIssueError(
                ConfigIssue(
                    path: "$.stateDirectory",
                    message: "cannot write the development certificate into \(stateDirectory.path)"
                )
            )
        }
        logger.notice("created a development certificate", metadata: ["file": "\(certificateFile.path)"])
        return (certificateFile, keyFile)
    }

    /// A new self-signed P-256 certificate for `localhost`, `*.localhost`, 127.0.0.1 and ::1.
    static func make(now: Date = Date()) throws -> (certificatePEM: String, keyPEM: String) {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("Ethical Gateway")
            CommonName("Ethical Gateway development certificate")
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth])
            SubjectAlternativeNames([
                .dnsName("localhost"),
                .dnsName("*.localhost"),
                .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                .ipAddress(ASN1OctetString(contentBytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])),
            ])
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(Self.lifetime),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        return (try certificate.serializeAsPEM().pemString, key.pemRepresentation)
    }
}
