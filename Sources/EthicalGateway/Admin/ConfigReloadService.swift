public import Logging
public import ServiceLifecycle
import UnixSignals

/// Reloads the whole configuration on SIGHUP for as long as the gateway runs (certificates,
/// routes, backends, issuers: everything the file names). A refused reload is logged and the
/// configuration in service stays.
public struct ConfigReloadService: Service {
    let controller: ConfigController

    public init(controller: ConfigController) {
        self.controller = controller
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            await self.controller.reloadFile(trigger: "SIGHUP")
        }
    }
}
