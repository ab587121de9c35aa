public import HTTP1Codec
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// Compares ``HTTP1RequestHeadParser`` with NIO's llhttp-based `HTTPRequestDecoder` on the same
/// bytes: for every input, either both read the same head (method, target, version, every
/// field's name and value, keep-alive), or ours refuses it. Ours accepting what llhttp refuses,
/// or reading it differently, is a finding: one of the two disagrees with RFC 9112, and a gateway
/// that reads a request differently from the server behind it is open to request smuggling.
///
/// Used by the fuzzer (`scripts/fuzz-http1.sh`, libFuzzer) and by the corpus replay in the tests.
public enum HTTP1Differential {
    public enum Outcome: Sendable, Equatable {
        /// Both read the same head.
        case bothAccepted
        /// Ours refused (whatever llhttp did).
        case oursRefused(HTTP1ParseError)
        /// Neither has a complete head yet, and neither refused.
        case bothIncomplete
        /// The two disagree; the text says how.
        case mismatch(String)
    }

    /// What llhttp makes of `bytes`: the first head, an error, or nothing yet.
    enum Reading {
        case head(HTTPRequestHead)
        case refused(any Error)
        case incomplete
    }

    public static func check(_ input: [UInt8]) -> Outcome {
        let ours = input.withUnsafeBytes { HTTP1RequestHeadParser.parse($0) }
        switch ours {
        case .refused(let error):
            return .oursRefused(error)
        case .incomplete:
            switch Self.llhttp(input) {
            case .incomplete: return .bothIncomplete
            case .head(let head): return .mismatch("ours needs more bytes; llhttp read \(head)")
            case .refused(let error):
                // A method llhttp does not know is refused by it before the space that ends it;
                // ours takes any token (see below) and waits for the space.
                if error as? HTTPParserError == .invalidMethod { return .bothIncomplete }
                // llhttp refuses some values at their first wrong byte (a letter in a
                // Content-Length), ours at the end of the line: once the line and the head end,
                // ours must refuse too, and not only for the Host the completion lacks.
                let completed = input + Array("\r\n\r\n".utf8)
                if case .refused(let ours) = completed.withUnsafeBytes(HTTP1RequestHeadParser.parse),
                    ours.status != 400 || !ours.description.contains("must carry a Host")
                {
                    return .bothIncomplete
                }
                return .mismatch("ours needs more bytes; llhttp refused: \(error)")
            }
        case .complete(let head):
            var buffer = ByteBuffer()
            buffer.writeBytes(input)
            let ourHead = head.makeHTTPRequestHead(from: buffer)
            // llhttp reads exactly the head: what follows (a body, a pipelined request) is not
            // part of this comparison.
            switch Self.llhttp(Array(input[..<head.length])) {
            case .incomplete:
                return .mismatch("ours read \(ourHead); llhttp needs more bytes")
            case .refused(let error):
                // llhttp knows a fixed list of methods; ours takes any token (RFC 9110 9.1). With
                // the method swapped for GET, llhttp must read everything else the same.
                guard ourHead.method != .GET, let swapped = Self.swappingMethod(Array(input[..<head.length]), head)
                else { return .mismatch("ours read \(ourHead); llhttp refused: \(error)") }
                guard case .head(let theirs) = Self.llhttp(swapped) else {
                    return .mismatch("ours read \(ourHead); llhttp refused: \(error), also with GET")
                }
                var ourGET = ourHead
                ourGET.method = .GET
                if let difference = Self.difference(ourGET, keepAlive: head.keepAlive, theirs) {
                    return .mismatch("with GET: \(difference)")
                }
                return .bothAccepted
            case .head(let theirs):
                if let difference = Self.difference(ourHead, keepAlive: head.keepAlive, theirs) {
                    return .mismatch(difference)
                }
                return .bothAccepted
            }
        }
    }

    /// The head with its method replaced by `GET` (only when the target is in origin or absolute
    /// form, which GET takes too).
    private static func swappingMethod(_ input: [UInt8], _ head: HTTP1RequestHead) -> [UInt8]? {
        let first = input[head.target.lowerBound]
        guard first != UInt8(ascii: "*"), input[head.method] != ArraySlice("CONNECT".utf8) else { return nil }
        return Array(input[..<head.method.lowerBound]) + Array("GET".utf8) + Array(input[head.method.upperBound...])
    }

    /// RFC 9110 5.5: whitespace around a value is not part of it; llhttp keeps what trails.
    private static func trimmingTrailingWhitespace(_ value: String) -> String {
        var bytes = Array(value.utf8)
        while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func difference(_ ours: HTTPRequestHead, keepAlive: Bool, _ theirs: HTTPRequestHead) -> String? {
        if ours.method != theirs.method { return "method: ours \(ours.method), llhttp \(theirs.method)" }
        if ours.uri != theirs.uri {
            return "target: ours \(ours.uri.debugDescription), llhttp \(theirs.uri.debugDescription)"
        }
        if ours.version != theirs.version { return "version: ours \(ours.version), llhttp \(theirs.version)" }
        let ourFields = ours.headers.map { [$0.name, $0.value] }
        let theirFields = theirs.headers.map { [$0.name, Self.trimmingTrailingWhitespace($0.value)] }
        if ourFields != theirFields { return "fields: ours \(ourFields), llhttp \(theirFields)" }
        if keepAlive != theirs.isKeepAlive { return "keep-alive: ours \(keepAlive), llhttp \(theirs.isKeepAlive)" }
        return nil
    }

    static func llhttp(_ input: [UInt8]) -> Reading {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        do {
            try channel.pipeline.syncOperations.addHandler(
                ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
            )
            var buffer = channel.allocator.buffer(capacity: input.count)
            buffer.writeBytes(input)
            try channel.writeInbound(buffer)
            while let part = try channel.readInbound(as: HTTPServerRequestPart.self) {
                if case .head(let head) = part { return .head(head) }
            }
            return .incomplete
        } catch {
            // A head can come before the error (the error is in what follows it).
            while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
                if case .head(let head) = part { return .head(head) }
            }
            return .refused(error)
        }
    }
}
