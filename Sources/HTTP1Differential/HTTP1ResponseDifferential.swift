import HTTP1Codec
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// Compares ``HTTP1ResponseDecoder`` with NIO's llhttp-based `HTTPResponseDecoder` on the same
/// bytes, read as the responses to a few requests (all `GET`, or all `HEAD`) on a connection the
/// upstream then closes: either both read the same responses (status, version, every field's
/// name and value, keep-alive, the body's bytes, the trailers, where each ends), or ours refuses.
/// Ours accepting what llhttp refuses, or reading a response differently, is a finding: a proxy
/// that frames a response differently from a client or cache behind it is open to response
/// splitting.
///
/// Interim (1xx) responses are left out on both sides (NIO's decoder drops them), and a 101
/// ends the comparison after its head (the rest is another protocol's).
public enum HTTP1ResponseDifferential {
    /// Requests the responses answer; more responses than this are refused by ours.
    static let requests = 4

    public static func check(_ input: [UInt8], toHEAD: Bool) -> HTTP1Differential.Outcome {
        let ours: [String]
        switch Self.ours(input, toHEAD: toHEAD) {
        case .failure(let error): return .oursRefused(error)
        case .success(let parts): ours = parts
        }
        let theirs: [String]
        switch Self.llhttp(input, toHEAD: toHEAD) {
        case .failure(let error):
            return .mismatch("ours read \(ours); llhttp refused: \(error) after \(error.partsBefore)")
        case .success(let parts): theirs = parts
        }
        if ours.isEmpty && theirs.isEmpty { return .bothIncomplete }
        if ours != theirs { return .mismatch("ours read \(ours); llhttp read \(theirs)") }
        return .bothAccepted
    }

    /// The parts ours reads, as text, then the close; or its refusal.
    static func ours(_ input: [UInt8], toHEAD: Bool) -> Result<[String], HTTP1ParseError> {
        var decoder = HTTP1ResponseDecoder(maxHeadBytes: 80 * 1024)
        for _ in 0..<Self.requests { decoder.expectResponse(toHEAD: toHEAD) }
        var buffer = ByteBuffer(bytes: input)
        var parts = Parts()
        while true {
            switch decoder.next(&buffer) {
            case .head(let head, let bytes):
                if head.isInterim { continue }
                // llhttp decides keep-alive before it learns that a response to HEAD has no body:
                // to it, a HEAD's answer without Content-Length ends the connection. Ours keeps
                // such a connection (RFC 9112 6.3); the rest of the reading must agree.
                let keepAlive = head.keepsConnection(toHEAD: false)
                parts.head(head.makeHTTPResponseHead(from: bytes), keepAlive: keepAlive)
                if head.status == 101 { return .success(parts.texts) }
            case .body(let part):
                parts.body(part)
            case .end(let trailers):
                parts.end(trailers)
            case .refused(let error):
                return .failure(error)
            case .needMoreData:
                switch decoder.inputEnded(leaving: buffer) {
                case .end(let trailers): parts.end(trailers)
                case .refused(let error): return .failure(error)
                default: break
                }
                return .success(parts.texts)
            }
        }
    }

    struct Refusal: Error, CustomStringConvertible {
        let error: any Error
        let partsBefore: [String]
        var description: String { "\(self.error)" }
    }

    /// The parts NIO's decoder reads from `input` followed by the connection's close.
    static func llhttp(_ input: [UInt8], toHEAD: Bool) -> Result<[String], Refusal> {
        let channel = EmbeddedChannel()
        var parts = Parts()
        func drain() {
            while let part = try? channel.readInbound(as: HTTPClientResponsePart.self) {
                switch part {
                case .head(let head): parts.head(head, keepAlive: head.isKeepAlive)
                case .body(let body): parts.body(body)
                case .end(let trailers): parts.end(trailers)
                }
            }
        }
        do {
            try channel.pipeline.syncOperations.addHandler(
                ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes))
            )
            let method: HTTPMethod = toHEAD ? .HEAD : .GET
            for _ in 0..<Self.requests {
                try channel.writeOutbound(
                    HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: "/"))
                )
            }
            try channel.writeInbound(ByteBuffer(bytes: input))
            drain()
            // After a 101 the rest is the new protocol's.
            if parts.switched {
                _ = try? channel.finish()
                return .success(parts.texts)
            }
            // The upstream closes: a body delimited by the close ends, a cut one is an error.
            channel.pipeline.fireChannelInactive()
            drain()
            try channel.throwIfErrorCaught()
            _ = try? channel.finish(acceptAlreadyClosed: true)
            return .success(parts.texts)
        } catch {
            drain()
            _ = try? channel.finish(acceptAlreadyClosed: true)
            if parts.switched { return .success(parts.texts) }
            return .failure(Refusal(error: error, partsBefore: parts.texts))
        }
    }

    /// Response parts as comparable text; consecutive body parts are joined (the two decoders
    /// split a body differently).
    struct Parts {
        private var done: [String] = []
        var switched = false
        private var body: [UInt8]?

        var texts: [String] { self.body.map { self.done + ["body \($0)"] } ?? self.done }

        /// `keepAlive`: llhttp's says whether the connection can carry another request (false
        /// for a body delimited by the close), which NIO's head keeps and ours computes.
        mutating func head(_ head: HTTPResponseHead, keepAlive: Bool) {
            if self.switched { return }
            self.flushBody()
            let fields = head.headers.map { "\($0.name): \(Self.trimmingTrailingWhitespace($0.value))" }
            self.done.append("head \(head.status.code) \(head.version) \(fields) keep-alive \(keepAlive)")
            if head.status == .switchingProtocols { self.switched = true }
        }

        mutating func body(_ part: ByteBuffer) {
            if self.switched { return }
            self.body = (self.body ?? []) + Array(part.readableBytesView)
        }

        mutating func end(_ trailers: HTTPHeaders?) {
            // NIO's decoder ends a 101 too; what follows it is not HTTP.
            if self.switched { return }
            self.flushBody()
            let fields = trailers.map { $0.map { "\($0.name): \(Self.trimmingTrailingWhitespace($0.value))" } } ?? []
            self.done.append("end \(fields)")
        }

        private mutating func flushBody() {
            guard let body = self.body else { return }
            self.body = nil
            self.done.append("body \(body)")
        }

        /// RFC 9110 5.5: whitespace around a value is not part of it; llhttp keeps what trails.
        static func trimmingTrailingWhitespace(_ value: String) -> String {
            var bytes = Array(value.utf8)
            while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes.removeLast() }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
