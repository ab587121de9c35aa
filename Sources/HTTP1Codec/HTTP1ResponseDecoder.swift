public import NIOCore
public import NIOHTTP1

/// Splits the bytes an upstream sends on an HTTP/1.1 connection into responses: each response's
/// head (``HTTP1ResponseHeadParser``), its body in the parts it arrived in, and its end, framed
/// by RFC 9112 6.3 as a proxy must read it.
///
/// A response's framing depends on the request it answers, so the decoder is told, for each
/// request sent, whether it was a `HEAD` (``expectResponse(toHEAD:)``); bytes that arrive while
/// no request waits for its response are refused. Then, in order:
/// - 1xx interim responses have no body; the final response to the same request follows them.
/// - `101 Switching Protocols` ends HTTP on the connection: after its head the decoder reads
///   nothing more, and the bytes after the head stay in the buffer for the new protocol.
/// - A response to `HEAD`, a 204 and a 304 have no body, whatever their fields say.
/// - `Transfer-Encoding: chunked` (with trailers), else `Content-Length`, else the body runs
///   until the connection closes: ``inputEnded(leaving:)`` then delivers its end.
/// - After a response that ends the connection (`Connection: close`, HTTP/1.0 without
///   keep-alive, a body read until the close; an interim one too), bytes are refused, as llhttp
///   refuses them.
///
/// A pure value, used like ``HTTP1RequestDecoder``: the caller owns the receive buffer, hands it
/// to ``next(_:)`` and acts on the event it gets back, one at a time. Body parts are slices of
/// the receive buffer, never copies.
///
/// ```swift
/// var decoder = HTTP1ResponseDecoder(maxHeadBytes: 80 * 1024)
/// decoder.expectResponse(toHEAD: false)  // a GET was sent
/// loop: while true {
///     switch decoder.next(&buffer) {
///     case .head(let head, _) where head.isInterim: continue
///     case .head(let head, _): print(head.status)
///     case .body(let part): print(part.readableBytes)
///     case .end: print("response complete")
///     case .needMoreData: break loop
///     case .refused(let error): print(error); break loop  // close the connection
///     }
/// }
/// ```
public struct HTTP1ResponseDecoder: Sendable {
    /// What the bytes held next.
    public enum Event {
        /// A response head (an interim one too: see ``HTTP1ResponseHead/isInterim``), and the
        /// bytes it was parsed from (its ranges are relative to their reader index).
        case head(HTTP1ResponseHead, ByteBuffer)
        /// A part of the response body, a slice of the receive buffer.
        case body(ByteBuffer)
        /// The response's end, with the trailer fields of a chunked body, if it had any.
        case end(HTTPHeaders?)
        /// Nothing more can be decoded until more bytes arrive (or, after a 101, ever).
        case needMoreData
        /// The bytes are not a valid response, or the head (or a trailer section) grew past
        /// ``maxHeadBytes``; nothing after them can be trusted.
        case refused(HTTP1ParseError)
    }

    private enum State: Sendable {
        /// Waiting for a head; `tried` bytes of it were parsed last time, incomplete.
        case head(tried: Int)
        /// Inside a response; with `closing`, its head said the connection ends with it.
        case body(HTTP1BodyDecoder, closing: Bool)
        /// A response that ends the connection has ended: no bytes may follow.
        case closed
        /// After a 101: the bytes are the new protocol's.
        case switched
        case failed
    }

    /// The largest head, and the largest trailer section, accepted.
    public let maxHeadBytes: Int
    private var state = State.head(tried: 0)
    /// For each request whose response has not begun, whether it was a `HEAD`.
    private var awaited = CircularBuffer<Bool>(initialCapacity: 2)

    public init(maxHeadBytes: Int) {
        self.maxHeadBytes = maxHeadBytes
    }

    /// A request was sent: its response comes after those of the requests sent before it.
    /// `toHEAD`: it was a `HEAD`, whose response has no body.
    public mutating func expectResponse(toHEAD: Bool) {
        self.awaited.append(toHEAD)
    }

    /// Whether the connection ends with the response under way (read after its head): its head
    /// said so (`Connection: close`, HTTP/1.0 without keep-alive), or its body is delimited by
    /// the close. Known from the parse, where NIO's `HTTPResponseHead.isKeepAlive` would split
    /// the `Connection` values again.
    public var endsConnection: Bool {
        switch self.state {
        case .head: false
        case .body(_, let closing): closing
        case .closed, .switched, .failed: true
        }
    }

    /// The next event from `buffer`, whose reader index moves past what it consumed.
    public mutating func next(_ buffer: inout ByteBuffer) -> Event {
        switch self.state {
        case .head(let tried):
            return self.nextHead(&buffer, tried: tried)
        case .body(var body, let closing):
            switch body.next(&buffer, maxTrailerBytes: self.maxHeadBytes) {
            case .body(let part):
                self.state = .body(body, closing: closing)
                return .body(part)
            case .end(let trailers):
                self.state = closing ? .closed : .head(tried: 0)
                return .end(trailers)
            case .needMoreData:
                self.state = .body(body, closing: closing)
                return .needMoreData
            case .trailersTooLarge:
                return self.fail(HTTP1ParseError(.headTooLarge))
            case .refused(let error):
                return self.fail(error)
            }
        case .closed:
            guard buffer.readableBytes == 0 else { return self.fail(HTTP1ParseError(.dataAfterClose)) }
            return .needMoreData
        case .switched, .failed:
            return .needMoreData
        }
    }

    /// What the connection's close means, with `buffer` left undecoded: nil when it fell
    /// between responses (or after a 101 or a refusal), the end of a body delimited by the
    /// close, or the refusal of the response it cut short.
    public mutating func inputEnded(leaving buffer: ByteBuffer) -> Event? {
        switch self.state {
        case .head:
            return buffer.readableBytes == 0 ? nil : self.fail(HTTP1ParseError(.incompleteMessage))
        case .body(let body, _):
            guard body.endsWithInput else { return self.fail(HTTP1ParseError(.incompleteMessage)) }
            self.state = .closed
            return .end(nil)
        case .closed:
            return buffer.readableBytes == 0 ? nil : self.fail(HTTP1ParseError(.dataAfterClose))
        case .switched, .failed:
            return nil
        }
    }

    private mutating func nextHead(_ buffer: inout ByteBuffer, tried: Int) -> Event {
        guard buffer.readableBytes > 0 else { return .needMoreData }
        guard let toHEAD = self.awaited.first else { return self.fail(HTTP1ParseError(.unexpectedResponse)) }
        guard HTTP1Reparsing.isWorthIt(buffer, tried: tried, line: false) else { return .needMoreData }
        switch buffer.withUnsafeReadableBytes(HTTP1ResponseHeadParser.parse) {
        case .incomplete:
            if buffer.readableBytes > self.maxHeadBytes { return self.fail(HTTP1ParseError(.headTooLarge)) }
            self.state = .head(tried: buffer.readableBytes)
            return .needMoreData
        case .refused(let error):
            return self.fail(error)
        case .complete(let head):
            if head.length > self.maxHeadBytes { return self.fail(HTTP1ParseError(.headTooLarge)) }
            let bytes = buffer.readSlice(length: head.length)!
            if head.status == 101 {
                self.awaited.removeFirst()
                self.state = .switched
            } else if head.status < 200 {
                // An interim response that says the connection ends (llhttp reads it so) leaves
                // no room for the final one.
                self.state = head.keepAlive ? .head(tried: 0) : .closed
            } else {
                self.awaited.removeFirst()
                let closing = !head.keepsConnection(toHEAD: toHEAD)
                if !head.hasBody(toHEAD: toHEAD) {
                    self.state = .body(.none, closing: closing)
                } else {
                    switch head.framing {
                    case .contentLength(let length): self.state = .body(.contentLength(length), closing: closing)
                    case .chunked: self.state = .body(.chunked, closing: closing)
                    case .untilClose: self.state = .body(.untilClose, closing: closing)
                    }
                }
            }
            return .head(head, bytes)
        }
    }

    private mutating func fail(_ error: HTTP1ParseError) -> Event {
        self.state = .failed
        return .refused(error.ofResponse)
    }
}
