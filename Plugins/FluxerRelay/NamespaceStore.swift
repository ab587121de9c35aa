import Foundation
import NIOConcurrencyHelpers

/// The relay's namespaces: read on every subscribe and publish, changed through the HTTP API,
/// and persisted with an atomic write so changes survive a restart.
final class NamespaceStore: Sendable {
    private let namespaces: NIOLockedValueBox<[String: NamespaceOptions]>
    /// Where changes are written; `nil` keeps them in memory only.
    let file: URL?

    /// Starts from the persisted namespaces when `file` exists, else from `configured`.
    init(configured: [String: NamespaceOptions], file: URL?) throws {
        self.file = file
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

    /// Applies `change` and persists the result; nothing changes when writing fails.
    @discardableResult
    func update<Result>(_ change: (inout [String: NamespaceOptions]) throws -> Result) throws -> Result {
        try self.namespaces.withLockedValue { namespaces in
            var changed = namespaces
            let result = try change(&changed)
            if let file = self.file, changed != namespaces {
                try FileManager.default.createDirectory(
                    at: file.deletingLastPathComponent(),
                    withIntermediateDirectories: true
                )
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try encoder.encode(changed).write(to: file, options: .atomic)
            }
            namespaces = changed
            return result
        }
    }
}

struct NamespaceStoreError: Error, CustomStringConvertible {
    let message: String
    var description: String { self.message }
}
