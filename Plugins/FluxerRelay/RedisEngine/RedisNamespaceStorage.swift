import Foundation
import NIOConcurrencyHelpers
import NIOCore
import RESPClient

/// The relay's namespaces in Redis, shared by every node: one hash with a version and the JSON
/// document. A change is compare-and-set on the version (``RedisEngineScripts/replaceNamespaces``),
/// retried when another node changed them first, and announced on a pub/sub channel that every
/// node listens to.
final class RedisNamespaceStorage: SharedNamespaceStorage {
    private let shard: RedisShard
    private let keys: RedisEngineKeys
    private let handler = NIOLockedValueBox(Handler())
    /// In a struct, not bare in the box: see ``RelayEventHandler``.
    private struct Handler: Sendable {
        var call: (@Sendable () -> Void)?
    }

    /// Attempts of a change before it gives up on nodes changing the namespaces at the same time.
    static let maxAttempts = 8

    init(shard: RedisShard, keys: RedisEngineKeys) {
        self.shard = shard
        self.keys = keys
    }

    func onChange(_ handler: @escaping @Sendable () -> Void) {
        self.handler.withLockedValue { $0.call = handler }
    }

    /// The namespaces may have changed: a node announced a new version, or the connection that
    /// hears announcements was lost for a while.
    func changed() {
        self.handler.withLockedValue { $0.call }?()
    }

    func load(on eventLoop: any EventLoop) -> EventLoopFuture<[String: NamespaceOptions]?> {
        self.loadVersioned(on: eventLoop).map { $0?.namespaces }
    }

    /// The stored version and namespaces; `nil` when none are stored.
    private func loadVersioned(
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<(version: Int64, namespaces: [String: NamespaceOptions])?> {
        self.shard.client.send("HMGET", [RESPArgument(self.keys.namespaces), "v", "doc"], on: eventLoop)
            .flatMapErrorThrowing { error in
                throw RelayEngineUnavailable(reason: "the relay's Redis at \(self.shard.endpoint) is unavailable")
            }.flatMapThrowing { reply in
                guard let values = reply.array, values.count == 2 else {
                    throw RedisEngineReplyError(script: "HMGET namespaces", reply: "\(reply)")
                }
                guard let version = values[0].int64, let document = values[1].buffer else { return nil }
                do {
                    let namespaces = try JSONDecoder().decode(
                        [String: NamespaceOptions].self,
                        from: Data(document.readableBytesView)
                    )
                    return (version, namespaces)
                } catch {
                    throw NamespaceStoreError(
                        message: "the namespaces stored in Redis (\(self.keys.namespaces)) cannot be read: \(error)"
                    )
                }
            }
    }

    func update<Result: Sendable>(
        initial: [String: NamespaceOptions],
        on eventLoop: any EventLoop,
        _ change: @escaping @Sendable (inout [String: NamespaceOptions]) throws -> Result
    ) -> EventLoopFuture<(result: Result, namespaces: [String: NamespaceOptions])> {
        self.attempt(1, initial: initial, on: eventLoop, change)
    }

    private func attempt<Result: Sendable>(
        _ attempt: Int,
        initial: [String: NamespaceOptions],
        on eventLoop: any EventLoop,
        _ change: @escaping @Sendable (inout [String: NamespaceOptions]) throws -> Result
    ) -> EventLoopFuture<(result: Result, namespaces: [String: NamespaceOptions])> {
        self.loadVersioned(on: eventLoop).flatMap { stored in
            var namespaces = stored?.namespaces ?? initial
            let result: Result
            let document: Data
            do {
                result = try change(&namespaces)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                document = try encoder.encode(namespaces)
            } catch {
                return eventLoop.makeFailedFuture(error)
            }
            let changed = namespaces
            return self.shard.client.evalSHA(
                RedisEngineScripts.replaceNamespaces,
                keys: [RESPArgument(self.keys.namespaces)],
                arguments: [
                    RESPArgument(Int(stored?.version ?? 0)), RESPArgument(ByteBuffer(bytes: document)),
                    RESPArgument(self.keys.namespacesChanged), RESPArgument(self.shard.publishCommand),
                ],
                on: eventLoop
            ).flatMapErrorThrowing { error in
                throw RelayEngineUnavailable(reason: "the relay's Redis at \(self.shard.endpoint) is unavailable")
            }.flatMap { reply in
                if let version = reply.int64, version > 0 {
                    return eventLoop.makeSucceededFuture((result, changed))
                }
                guard attempt < Self.maxAttempts else {
                    return eventLoop.makeFailedFuture(
                        NamespaceStoreError(message: "other nodes kept changing the namespaces; try again")
                    )
                }
                // Nodes racing for the same version back off for a random while, growing with
                // each lost round, so one of them wins the next.
                let delay = TimeAmount.milliseconds(Int64.random(in: 1...(10 << min(attempt, 5))))
                return eventLoop.scheduleTask(in: delay) {}.futureResult.flatMap {
                    self.attempt(attempt + 1, initial: initial, on: eventLoop, change)
                }
            }
        }
    }
}
