import Crypto
public import Foundation
import NIOSSL
import SwiftASN1
import X509

/// A self-signed certificate made for a test, written as PEM files, so TLS handshakes in tests
/// are real and each certificate can be told apart by its common name and fingerprint.
public struct TestCertificate: Sendable {
    public let commonName: String
    public let certificateFile: URL
    public let keyFile: URL
    public let certificatePEM: String
    /// SHA-256 of the DER encoding, colon-separated upper-case hex.
    public let fingerprint: String

    /// Makes a P-256 certificate for `dnsNames` (also its subject alternative names) and writes
    /// `<fileStem>.pem` and `<fileStem>.key` into `directory`.
    public static func make(
        commonName: String,
        dnsNames: [String],
        in directory: URL,
        fileStem: String? = nil
    ) throws -> TestCertificate {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName(commonName) }
        let now = Date()
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(24 * 3600),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                SubjectAlternativeNames(dnsNames.map { GeneralName.dnsName($0) })
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        let pem = try certificate.serializeAsPEM().pemString
        let stem = fileStem ?? commonName.replacingOccurrences(of: "*", with: "wildcard")
        let certificateFile = directory.appendingPathComponent("\(stem).pem")
        let keyFile = directory.appendingPathComponent("\(stem).key")
        try Data(pem.utf8).write(to: certificateFile)
        try Data(key.pemRepresentation.utf8).write(to: keyFile)
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        let fingerprint = SHA256.hash(data: serializer.serializedBytes).map { String(format: "%02X", $0) }.joined(
            separator: ":"
        )
        return TestCertificate(
            commonName: commonName,
            certificateFile: certificateFile,
            keyFile: keyFile,
            certificatePEM: pem,
            fingerprint: fingerprint
        )
    }
}
