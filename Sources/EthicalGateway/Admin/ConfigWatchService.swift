import Foundation
public import ServiceLifecycle

/// Reloads when the config file changes, while the configuration in service says
/// `"watchConfig": true`: the file's modification time and size are checked every
/// ``interval``; a changed file whose bytes differ from the configuration in service (an admin
/// API write does not) is reloaded through the ``ConfigController``.
public struct ConfigWatchService: Service {
    let controller: ConfigController
    let server: GatewayServer
    let interval: Duration

    public init(controller: ConfigController, server: GatewayServer, interval: Duration = .seconds(1)) {
        self.controller = controller
        self.server = server
        self.interval = interval
    }

    public func run() async throws {
        let url = self.controller.configURL
        var last = Self.stamp(of: url)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let interval = self.interval
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            guard self.server.runtime.configuration.watchConfig else { continue }
            let stamp = Self.stamp(of: url)
            guard stamp != last else { continue }
            last = stamp
            guard let data = try? Data(contentsOf: url),
                ConfigSource.version(of: data) != self.server.runtime.source.version
            else { continue }
            await self.controller.reloadFile(trigger: "file change")
        }
    }

    private struct Stamp: Equatable {
        var modified: Date?
        var size: Int?
    }

    /// The file's stamp; a symbolic link is followed (an edit of its target is a change).
    private static func stamp(of url: URL) -> Stamp {
        let attributes = try? FileManager.default.attributesOfItem(atPath: url.resolvingSymlinksInPath().path)
        return Stamp(
            modified: attributes?[.modificationDate] as? Date,
            size: (attributes?[.size] as? NSNumber)?.intValue
        )
    }
}
