public import EthicalGateway
import Foundation
import NIOCore
import NIOPosix

/// The `static` backend: serves files from a folder.
///
/// ```json
/// "site": { "plugin": "static", "config": { "root": "www", "maxAgeSeconds": 300 } }
/// ```
/// Serves `GET` and `HEAD` with `Content-Type` by extension, `ETag` and `Last-Modified` (and
/// 304 answers to `If-None-Match` / `If-Modified-Since`), single byte ranges (`Range`,
/// `If-Range`, 206 and 416), index files for folders. Paths cannot leave the root: `..`
/// segments (also percent-encoded) are refused and symbolic links are followed only while
/// their target stays inside the root.
public enum StaticFilesPlugin: BackendPlugin {
    public static let id = "static"

    /// Configuration of a `static` backend.
    public struct Configuration: Decodable, Sendable {
        /// The folder to serve, relative to the configuration file's folder.
        public var root: String
        /// Files tried, in order, when the path names a folder. Default `["index.html"]`.
        public var indexFiles: [String]
        /// Adds `Cache-Control: public, max-age=N` when set.
        public var maxAgeSeconds: Int?
        /// Extra or overriding content types by file extension, e.g. `{"webmanifest": "application/manifest+json"}`.
        public var contentTypes: [String: String]

        enum CodingKeys: String, CodingKey { case root, indexFiles, maxAgeSeconds, contentTypes }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.root = try container.decode(String.self, forKey: .root)
            self.indexFiles = try container.decodeIfPresent([String].self, forKey: .indexFiles) ?? ["index.html"]
            self.maxAgeSeconds = try container.decodeIfPresent(Int.self, forKey: .maxAgeSeconds)
            self.contentTypes = try container.decodeIfPresent([String: String].self, forKey: .contentTypes) ?? [:]
        }
    }

    public static func provision(_ configuration: Configuration, context: PluginContext) throws -> any Backend {
        let root = context.resolvePath(configuration.root)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw context.error("root", "\(root.path) is not an existing folder")
        }
        guard let realRoot = realPath(root.path) else {
            throw context.error("root", "\(root.path) cannot be resolved")
        }
        for (offset, index) in configuration.indexFiles.enumerated() where index.isEmpty || index.contains("/") {
            throw context.error("indexFiles[\(offset)]", "expected a file name without \"/\", found \"\(index)\"")
        }
        if let maxAge = configuration.maxAgeSeconds, maxAge < 0 {
            throw context.error("maxAgeSeconds", "expected a number of seconds >= 0")
        }
        var types = ContentTypes.defaults
        for (ext, type) in configuration.contentTypes { types[ext.lowercased()] = type }
        return StaticFilesBackend(
            root: realRoot,
            indexFiles: configuration.indexFiles,
            cacheControl: configuration.maxAgeSeconds.map { "public, max-age=\($0)" },
            contentTypes: types,
            fileIO: context.fileIO,
            threadPool: .singleton
        )
    }
}

/// The canonical absolute path, with every symbolic link resolved; `nil` if it does not exist.
func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}
