import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Replaces a file's content atomically: the bytes go to a temporary file in the same folder,
/// which is flushed to disk (`fsync`) and renamed over the target; the folder is flushed too, so
/// after a crash the file holds either the old or the new content, never a mix. The file's
/// permission bits, owner and group are kept; a symbolic link is followed (its target is
/// replaced, the link stays); a file the gateway may not write is refused.
enum AtomicFile {
    struct WriteError: Error, CustomStringConvertible {
        var description: String
    }

    static func write(_ data: Data, to link: URL) throws {
        let url = link.resolvingSymlinksInPath()
        let directory = url.deletingLastPathComponent().path
        let temporary = "\(directory)/.\(url.lastPathComponent).\(UInt32.random(in: 0...UInt32.max)).tmp"
        var mode: mode_t = 0o644
        var owner: (uid_t, gid_t)?
        var status = stat()
        if stat(url.path, &status) == 0 {
            mode = status.st_mode & 0o7777
            owner = (status.st_uid, status.st_gid)
            // Renaming over a read-only file needs only the folder's permission: check the file's.
            guard access(url.path, W_OK) == 0 else {
                throw WriteError(description: "\(url.path) is not writable by the gateway (\(Self.errnoText()))")
            }
        }
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw WriteError(description: "cannot create \(temporary): \(Self.errnoText())") }
        // The mode without the umask, and the owner when the gateway may set it.
        fchmod(descriptor, mode)
        if let (uid, gid) = owner { _ = fchown(descriptor, uid, gid) }
        var failure: String?
        data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = "cannot write \(temporary): \(Self.errnoText())"
                    return
                }
                offset += written
            }
        }
        if failure == nil && fsync(descriptor) != 0 { failure = "cannot flush \(temporary): \(Self.errnoText())" }
        close(descriptor)
        if let failure {
            unlink(temporary)
            throw WriteError(description: failure)
        }
        guard rename(temporary, url.path) == 0 else {
            let reason = Self.errnoText()
            unlink(temporary)
            throw WriteError(description: "cannot replace \(url.path): \(reason)")
        }
        let folder = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folder >= 0 {
            fsync(folder)
            close(folder)
        }
    }

    private static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
