import EthicalGateway
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves files below `root`. The blocking steps (resolving the path, `open`, `fstat`) run on
/// the I/O thread pool; the body streams with `NonBlockingFileIO`, one chunk after the previous
/// one reached the socket, so a slow client holds one chunk of memory, not the file.
struct StaticFilesBackend: Backend {
    let root: String
    let indexFiles: [String]
    let cacheControl: String?
    let contentTypes: [String: String]
    let fileIO: NonBlockingFileIO
    let threadPool: NIOThreadPool

    static let chunkSize = 64 * 1024

    func handle(_ request: GatewayRequest, response: ResponseWriter) -> any RequestBodyReceiver {
        let method = request.head.method
        guard method == .GET || method == .HEAD else {
            response.respond(GatewayResponse(status: .methodNotAllowed, headers: ["allow": "GET, HEAD"]))
            return DiscardingBodyReceiver.shared
        }
        guard let decoded = RequestPath.percentDecode(Substring(request.path)),
            !decoded.contains("\0"),
            !decoded.split(separator: "/").contains(where: { $0 == ".." || $0 == "." })
        else {
            response.respondWithProblem(.badRequest, detail: "the path is not a valid file path")
            return DiscardingBodyReceiver.shared
        }
        let root = self.root
        let indexFiles = self.indexFiles
        let opened = self.threadPool.runIfActive(eventLoop: request.eventLoop) {
            try OpenedFile.open(root: root, relativePath: decoded, indexFiles: indexFiles)
        }
        opened.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let file?):
                self.serve(file, request: request, response: response)
            case .success(nil):
                response.respondWithProblem(.notFound, detail: "no file at \(request.path)")
            case .failure(let error):
                request.logger.error("static file failed", metadata: ["error": "\(error)"])
                response.respondWithProblem(.internalServerError, detail: "the file could not be read")
            }
        }
        return DiscardingBodyReceiver.shared
    }

    private func serve(_ file: OpenedFile, request: GatewayRequest, response: ResponseWriter) {
        guard response.isActive else {
            try? file.handle.close()
            return
        }
        var headers = HTTPHeaders()
        let etag = "\"\(String(file.size, radix: 16))-\(String(file.modified, radix: 16))\""
        headers.add(name: "etag", value: etag)
        headers.add(name: "last-modified", value: HTTPDate.format(file.modified))
        headers.add(name: "accept-ranges", value: "bytes")
        headers.add(name: "content-type", value: self.contentType(for: file.path))
        if let cacheControl = self.cacheControl { headers.add(name: "cache-control", value: cacheControl) }

        let requestHeaders = request.head.headers
        if Self.notModified(requestHeaders, etag: etag, modified: file.modified) {
            try? file.handle.close()
            response.writeHead(HTTPResponseHead(version: .http1_1, status: .notModified, headers: headers))
            response.writeEnd()
            return
        }

        var status = HTTPResponseStatus.ok
        var offset: Int64 = 0
        var length = file.size
        if let rangeHeader = requestHeaders.first(name: "range"),
            Self.ifRangeHolds(requestHeaders.first(name: "if-range"), etag: etag, modified: file.modified)
        {
            switch ByteRange.parse(rangeHeader, size: file.size) {
            case .satisfiable(let start, let end):
                status = .partialContent
                offset = start
                length = end - start + 1
                headers.add(name: "content-range", value: "bytes \(start)-\(end)/\(file.size)")
            case .unsatisfiable:
                try? file.handle.close()
                headers.add(name: "content-range", value: "bytes */\(file.size)")
                headers.replaceOrAdd(name: "content-length", value: "0")
                headers.remove(name: "content-type")
                response.writeHead(HTTPResponseHead(version: .http1_1, status: .rangeNotSatisfiable, headers: headers))
                response.writeEnd()
                return
            case .ignored:
                break
            }
        }
        headers.add(name: "content-length", value: String(length))
        response.writeHead(HTTPResponseHead(version: .http1_1, status: status, headers: headers))
        guard request.head.method != .HEAD, length > 0 else {
            try? file.handle.close()
            response.writeEnd()
            return
        }
        let streamed = self.fileIO.readChunked(
            fileHandle: file.handle,
            fromOffset: offset,
            byteCount: Int(length),
            chunkSize: Self.chunkSize,
            allocator: ByteBufferAllocator(),
            eventLoop: request.eventLoop
        ) { chunk in
            response.writeBody(chunk)
        }
        streamed.assumeIsolated().whenComplete { result in
            try? file.handle.close()
            switch result {
            case .success:
                response.writeEnd()
            case .failure(let error):
                request.logger.debug("file transfer ended early", metadata: ["error": "\(error)"])
                // Headers are out; cutting the response is the only honest signal left.
                response.respondWithProblem(.internalServerError, detail: "the transfer failed")
            }
        }
    }

    private func contentType(for path: String) -> String {
        let ext = (path as NSString).pathExtension.lowercased()
        return self.contentTypes[ext] ?? "application/octet-stream"
    }

    /// RFC 9110 section 13.2.2: `If-None-Match` decides when present, else `If-Modified-Since`.
    static func notModified(_ headers: HTTPHeaders, etag: String, modified: Int64) -> Bool {
        if let ifNoneMatch = headers.first(name: "if-none-match") {
            let tags = ifNoneMatch.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            return tags.contains("*") || tags.contains { $0 == etag || $0 == "W/" + etag }
        }
        if let since = headers.first(name: "if-modified-since").flatMap(HTTPDate.parse) {
            return modified <= since
        }
        return false
    }

    /// `If-Range` allows the range only when the representation is unchanged.
    static func ifRangeHolds(_ ifRange: String?, etag: String, modified: Int64) -> Bool {
        guard let ifRange else { return true }
        if ifRange.hasPrefix("\"") { return ifRange == etag }
        return HTTPDate.parse(ifRange) == modified
    }
}

/// An open file ready to stream, resolved safely inside the root.
struct OpenedFile: @unchecked Sendable {
    let handle: NIOFileHandle
    let path: String
    let size: Int64
    /// Modification time in whole seconds since 1970.
    let modified: Int64

    /// Resolves `relativePath` below `root` (trying index files for folders) and opens it.
    /// Returns `nil` when there is no such regular file inside the root.
    static func open(root: String, relativePath: String, indexFiles: [String]) throws -> OpenedFile? {
        var candidate = root + (relativePath.hasPrefix("/") ? relativePath : "/" + relativePath)
        var info = stat()
        guard stat(candidate, &info) == 0 else { return nil }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            guard
                let index = indexFiles.lazy.map({ candidate + (candidate.hasSuffix("/") ? "" : "/") + $0 })
                    .first(where: { stat($0, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG })
            else { return nil }
            candidate = index
        }
        // Symbolic links may point anywhere; only serve what really lies inside the root.
        guard let resolved = realPath(candidate), resolved == root || resolved.hasPrefix(root + "/") else { return nil }
        let descriptor = Glibc.open(resolved, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(descriptor)
            return nil
        }
        return OpenedFile(
            handle: NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor),
            path: resolved,
            size: Int64(info.st_size),
            modified: Int64(info.st_mtim.tv_sec)
        )
    }
}
