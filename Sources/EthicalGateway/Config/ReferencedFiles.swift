import Crypto
import Foundation

/// The files a part of the configuration names, by content: every string in it that names a
/// regular file (relative to the config's folder) counts, with the SHA-256 of its bytes. A reload
/// carries a backend, filter or the issuers over only when their JSON *and* these files are
/// unchanged, so a rotated key, API key or CA file named by an unchanged declaration is read
/// again (SIGHUP is how a rotated secret is picked up).
enum ReferencedFiles {
    /// Files larger than this count by size and modification time instead of content.
    static let maxHashedBytes = 4 * 1024 * 1024

    /// Path -> content digest of every file `value` names.
    static func fingerprint(of value: JSONValue?, configDirectory: URL) -> [String: String] {
        var result: [String: String] = [:]
        Self.collect(value, configDirectory: configDirectory, into: &result)
        return result
    }

    private static func collect(_ value: JSONValue?, configDirectory: URL, into result: inout [String: String]) {
        switch value {
        case .string(let text)?:
            guard !text.isEmpty, text.utf8.count < 4096, !text.contains("\n") else { return }
            let url = resolveConfigPath(text, relativeTo: configDirectory)
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
                attributes[.type] as? FileAttributeType == .typeRegular
            else { return }
            let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
            if size <= Self.maxHashedBytes, let data = try? Data(contentsOf: url) {
                result[url.path] = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
            } else {
                let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
                result[url.path] = "\(size)@\(modified)"
            }
        case .array(let elements)?:
            for element in elements { Self.collect(element, configDirectory: configDirectory, into: &result) }
        case .object(let members)?:
            for member in members.values { Self.collect(member, configDirectory: configDirectory, into: &result) }
        default:
            return
        }
    }
}
