import DequeModule
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The relay's namespaces: read on every subscribe and publish, changed through the HTTP API,
/// and persisted with an atomic write so changes survive a restart. With a shared engine
/// (Redis), changes are made in the engine's storage first, and every node applies them.
///
/// Reads take a lock only for a dictionary lookup. Changes are applied to a copy, written to the
/// file on a thread pool (never on an event loop, never under the lock readers take) and then
/// swapped in, one change at a time and in the order they were asked for.
final class NamespaceStore: Sendable {
    private let namespaces: NIOLockedValueBox<[String: NamespaceOptions]>
    /// Where changes are written; `nil` keeps them in memory only.
    let file: URL?
    private let threadPool: NIOThreadPool
    /// Changes waiting for the writer, oldest first; each pool task runs the oldest.
    private let pending = NIOLockedValueBox(Deque<PendingChange>())
    /// Held by the one change being applied and written; readers never take it.
    private let writer = NIOLock()
    /// Where every node's namespaces live, for shared engines.
    let shared: (any SharedNamespaceStorage)?
    /// Where a failure to keep this node's copy of shared namespaces is reported.
    let logger: Logger?

    private struct PendingChange: Sendable {
        /// Applies the change, persists it and completes its future.
        let run: @Sendable () -> Void
        /// Fails its future: the thread pool is gone.
        let cancel: @Sendable () -> Void
    }

    /// Starts from the persisted namespaces when `file` exists, else from `configured`.
    init(
        configured: [String: NamespaceOptions],
        file: URL?,
        shared: (any SharedNamespaceStorage)? = nil,
        logger: Logger? = nil,
        threadPool: NIOThreadPool = .singleton
    ) throws {
        self.file = file
        self.shared = shared
        self.logger = logger
        self.threadPool = threadPool
        var initial = configured
        if let file, FileManager.default.fileExists(atPath: file.path) {
            let data = try Data(contentsOf: file)
            do {
                initial = try JSONDecoder().decode([String: NamespaceOptions].self, from: data)
            } catch {
                throw NamespaceStoreError(
                    message: "the saved namespaces in \(file.path) cannot be read (\(error)); fix or remove the file"
                )
            }
        }
        self.namespaces = NIOLockedValueBox(initial)
    }

    subscript(name: String) -> NamespaceOptions? {
        self.namespaces.withLockedValue { $0[name] }
    }

    var all: [String: NamespaceOptions] {
        self.namespaces.withLockedValue { $0 }
    }

    /// Applies `change` to a copy of the namespaces, persists the copy and then makes it the
    /// namespaces; nothing changes when `change` throws or writing fails. With shared storage,
    /// the change is made there first (atomically, on the namespaces every node sees), then
    /// applied here; the other nodes apply it when the storage tells them.
    ///
    /// - Returns: a future of `change`'s result, completed on `eventLoop`.
    func update<Result: Sendable>(
        on eventLoop: any EventLoop,
        _ change: @escaping @Sendable (inout [String: NamespaceOptions]) throws -> Result
    ) -> EventLoopFuture<Result> {
        guard let shared = self.shared else { return self.updateLocally(on: eventLoop, change) }
        return shared.update(initial: self.all, on: eventLoop, change).flatMap { outcome in
            // The change is live on every node once stored in the shared storage; this node's
            // file is only its copy for a start without Redis, so failing to write it is logged,
            // not reported as a failed change.
            self.updateLocally(on: eventLoop) { $0 = outcome.namespaces }.map { outcome.result }
                .flatMapError { error in
                    self.logger?.warning(
                        "relay namespaces changed in the shared storage but not written to this node's file",
                        metadata: ["error": "\(error)"]
                    )
                    self.namespaces.withLockedValue { $0 = outcome.namespaces }
                    return eventLoop.makeSucceededFuture(outcome.result)
                }
        }
    }

    /// Takes the namespaces every node shares, as stored by a node's change.
    ///
    /// - Returns: the names of namespaces that are gone, whose subscribers must leave.
    func adoptShared(_ namespaces: [String: NamespaceOptions], on eventLoop: any EventLoop) -> EventLoopFuture<[String]>
    {
        self.updateLocally(on: eventLoop) { current in
            let removed = current.keys.filter { namespaces[$0] == nil }
            current = namespaces
            return removed
        }
    }

    /// ``update(on:_:)`` on this node only.
    private func updateLocally<Result: Sendable>(
        on eventLoop: any EventLoop,
        _ change: @escaping @Sendable (inout [String: NamespaceOptions]) throws -> Result
    ) -> EventLoopFuture<Result> {
        let promise = eventLoop.makePromise(of: Result.self)
        let job = PendingChange(
            run: {
                do {
                    let current = self.all
                    var changed = current
                    let result = try change(&changed)
                    if let file = self.file, changed != current { try Self.persist(changed, to: file) }
                    self.namespaces.withLockedValue { $0 = changed }
                    promise.succeed(result)
                } catch {
                    promise.fail(error)
                }
            },
            cancel: { promise.fail(NamespaceStoreError(message: "the gateway is shutting down")) }
        )
        self.pending.withLockedValue { $0.append(job) }
        self.threadPool.submit { state in
            // Runs the oldest change, not necessarily this one: pool threads may start their
            // tasks in any order, the queue keeps the order changes were asked for.
            self.writer.withLock {
                guard let next = self.pending.withLockedValue({ $0.popFirst() }) else { return }
                if case .active = state { next.run() } else { next.cancel() }
            }
        }
        return promise.futureResult
    }

    /// Writes `namespaces` to `file` atomically: a temporary file beside it (`<file>.tmp`),
    /// flushed to disk, then renamed over it, so a crash leaves the old file or the new one.
    private static func persist(_ namespaces: [String: NamespaceOptions], to file: URL) throws {
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(namespaces)
        let temporary = file.path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw NamespaceStoreError(posix: "cannot create \(temporary)") }
        var written = 0
        let complete = data.withUnsafeBytes { bytes -> Bool in
            while written < bytes.count {
                let count = write(descriptor, bytes.baseAddress! + written, bytes.count - written)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return false }
                written += count
            }
            return true
        }
        // EINVAL: a file that cannot be synchronised (a pipe); there is nothing to flush.
        let synced = complete && (fsync(descriptor) == 0 || errno == EINVAL)
        let failure = errno
        close(descriptor)
        guard synced else {
            unlink(temporary)
            errno = failure
            throw NamespaceStoreError(posix: "cannot write \(temporary)")
        }
        guard rename(temporary, file.path) == 0 else {
            throw NamespaceStoreError(posix: "cannot rename \(temporary) to \(file.path)")
        }
    }
}

struct NamespaceStoreError: Error, CustomStringConvertible {
    let message: String
    var description: String { self.message }

    init(message: String) {
        self.message = message
    }

    /// `what`, with the reason `errno` gives.
    init(posix what: String) {
        self.message = "\(what): \(String(cString: strerror(errno)))"
    }
}
