import EthicalGateway
import Foundation
import NIOCore
import NIOSSL
import RESPClient

extension RedisEngine {
    /// Builds the engine from the relay's `engine` config: one client configuration per address,
    /// with the password file, ACL user, TLS settings and timeouts applied. Reads files (the
    /// password, certificates) but connects nothing.
    ///
    /// - Throws: ``ConfigValidationError`` naming each key (`….engine.passwordFile`, say) that
    ///   cannot be used.
    static func provision(_ configuration: RelayEngineConfiguration, context: PluginContext) throws -> RedisEngine {
        var issues: [ConfigIssue] = []
        func issue(_ key: String, _ message: String) {
            issues.append(ConfigIssue(path: "\(context.configPath).engine.\(key)", message: message))
        }
        var password: String?
        if let passwordFile = configuration.passwordFile {
            let url = context.resolvePath(passwordFile)
            do {
                password = try String(contentsOf: url, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                if password?.isEmpty == true { issue("passwordFile", "\(url.path) is empty") }
            } catch {
                issue("passwordFile", "cannot read \(url.path): \(error)")
            }
        }
        let tls = configuration.tls
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        tlsConfiguration.minimumTLSVersion = .tlsv12
        if !tls.verify { tlsConfiguration.certificateVerification = .none }
        if let caFile = tls.caFile {
            let url = context.resolvePath(caFile)
            do {
                tlsConfiguration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(url.path))
            } catch {
                issue("tls.caFile", "\(url.path) does not hold PEM certificates (\(error))")
            }
        }
        switch (tls.certificateFile, tls.keyFile) {
        case (let certificateFile?, let keyFile?):
            let certificateURL = context.resolvePath(certificateFile)
            let keyURL = context.resolvePath(keyFile)
            do {
                tlsConfiguration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateURL.path).map {
                    .certificate($0)
                }
            } catch {
                issue("tls.certificateFile", "\(certificateURL.path) does not hold PEM certificates (\(error))")
            }
            do {
                tlsConfiguration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyURL.path, format: .pem))
            } catch {
                issue("tls.keyFile", "\(keyURL.path) does not hold a PEM private key (\(error))")
            }
        case (nil, nil): break
        case (nil, _): issue("tls.certificateFile", "a client key needs its certificate: set both or neither")
        case (_, nil): issue("tls.keyFile", "a client certificate needs its key: set both or neither")
        }
        var clients: [RedisClientConfiguration] = []
        for (index, address) in configuration.addresses.enumerated() {
            guard let endpoint = try? RedisEndpoint(url: address) else { continue }  // Reported by `problems`.
            var client = RedisClientConfiguration(endpoint: endpoint)
            if let username = configuration.username { client.username = username }
            if let password { client.password = password }
            if endpoint.useTLS {
                client.tls = tlsConfiguration
                client.serverName = tls.serverName
            } else if tls.caFile != nil || tls.certificateFile != nil {
                issue(
                    "addresses[\(index)]",
                    "tls settings are given but \(endpoint) is not a rediss:// address"
                )
            }
            client.connectTimeout = .milliseconds(Int64(configuration.connectTimeoutSeconds * 1000))
            client.commandTimeout = .milliseconds(Int64(configuration.commandTimeoutSeconds * 1000))
            clients.append(client)
        }
        // No usable address is reported by the configuration's `problems` (with its path).
        guard issues.isEmpty, !clients.isEmpty else { throw ConfigValidationError(issues) }
        return RedisEngine(
            configuration: configuration,
            clientConfigurations: clients,
            eventLoopGroup: context.eventLoopGroup,
            logger: context.logger
        )
    }
}
