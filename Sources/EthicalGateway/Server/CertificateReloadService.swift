public import Logging
public import ServiceLifecycle
import UnixSignals

/// Reloads certificates on SIGHUP for as long as the gateway runs. A failed reload is logged
/// and the certificates in service stay.
public struct CertificateReloadService: Service {
    let server: GatewayServer
    let logger: Logger

    public init(server: GatewayServer, logger: Logger) {
        self.server = server
        self.logger = logger
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            do {
                try self.server.reloadCertificates()
            } catch {
                self.logger.error("certificate reload failed; the previous certificates stay in service\n\(error)")
            }
        }
    }
}
