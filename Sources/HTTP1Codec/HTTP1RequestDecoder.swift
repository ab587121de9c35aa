public import NIOCore
public import NIOHTTP1

/// Splits the bytes a client sends on an HTTP/1.1 connection into requests: each request's
/// head (``HTTP1RequestHeadParser``), its body in the parts it arrived in (counted down from
/// `Content-Length`, or decoded from chunked framing with ``HTTP1ChunkSizeLine`` and
/// ``HTTP1TrailerSection``), and its end.
///
/// A pure value: the caller owns the receive buffer, hands it to ``next(_:)`` and acts on the
/// event it gets back, one at a time; the decoder moves the buffer's reader index past what an
/// event consumed. Body parts are slices of the receive buffer, never copies. After
/// ``Event/end(_:)`` it is ready for the next head, so a caller decides itself when pipelined
/// requests are read.
///
/// ```swift
/// var decoder = HTTP1RequestDecoder(maxHeadBytes: 16_384)
/// loop: while true {
///     switch decoder.next(&buffer) {
///     case .head(let head, let bytes): print(head.method(in: bytes))
///     case .body(let part): print(part.readableBytes)
///     case .end: print("request complete")
///     case .needMoreData: break loop
///     case .headTooLarge, .refused: break loop  // answer and close
///     }
/// }
/// ```
///
/// A head (or trailer section) that arrives in many small reads is not parsed again on every
/// read: only when the bytes so far have doubled since the last attempt, or the new bytes may
/// hold the empty line that ends it. A client trickling a head byte by byte thus costs linear
/// time, not quadratic.
public struct HTTP1RequestDecoder: Sendable {
    /// What the bytes held next.
    public enum Event {
        /// A request head, and the bytes it was parsed from (its ranges are relative to their
        /// reader index).
        case head(HTTP1RequestHead, ByteBuffer)
        /// A part of the request body, a slice of the receive buffer.
        case body(ByteBuffer)
        /// The request's end, with the trailer fields of a chunked body, if it had any.
        case end(HTTPHeaders?)
        /// Nothing more can be decoded until more bytes arrive.
        case needMoreData
        /// The head (or the trailer section) grew past ``maxHeadBytes`` before it ended.
        case headTooLarge
        /// The bytes are not a valid request; nothing after them can be trusted.
        case refused(HTTP1ParseError)
    }

    private enum State: Sendable {
        /// Waiting for a head; `tried` bytes of it were parsed last time, incomplete.
        case head(tried: Int)
        case body(HTTP1BodyDecoder)
        case failed
    }

    /// The largest head, and the largest trailer section, accepted.
    public let maxHeadBytes: Int
    public let options: HTTP1RequestHeadParser.Options
    private var state = State.head(tried: 0)

    public init(maxHeadBytes: Int, options: HTTP1RequestHeadParser.Options = .init()) {
        self.maxHeadBytes = maxHeadBytes
        self.options = options
    }

    /// Whether the decoder waits for a request head (between requests).
    public var awaitsHead: Bool {
        if case .head = self.state { return true }
        return false
    }

    /// The next event from `buffer`, whose reader index moves past what it consumed.
    public mutating func next(_ buffer: inout ByteBuffer) -> Event {
        switch self.state {
        case .head(let tried):
            return self.nextHead(&buffer, tried: tried)
        case .body(var body):
            switch body.next(&buffer, maxTrailerBytes: self.maxHeadBytes) {
            case .body(let part):
                self.state = .body(body)
                return .body(part)
            case .end(let trailers):
                self.state = .head(tried: 0)
                return .end(trailers)
            case .needMoreData:
                self.state = .body(body)
                return .needMoreData
            case .trailersTooLarge:
                return self.failTooLarge()
            case .refused(let error):
                return self.fail(error)
            }
        case .failed:
            return .needMoreData
        }
    }

    /// What the end of the client's input means here: nil when it fell between requests (only
    /// empty lines, which may precede a request, are left), else the refusal of the request it
    /// cut short.
    public func inputEnded(leaving buffer: ByteBuffer) -> HTTP1ParseError? {
        switch self.state {
        case .head:
            let onlyLineEnds = buffer.readableBytesView.allSatisfy {
                $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n")
            }
            return onlyLineEnds ? nil : HTTP1ParseError(.incompleteMessage)
        case .failed:
            return nil
        case .body(let body):
            return body.endsWithInput ? nil : HTTP1ParseError(.incompleteMessage)
        }
    }

    private mutating func nextHead(_ buffer: inout ByteBuffer, tried: Int) -> Event {
        guard buffer.readableBytes > 0, HTTP1Reparsing.isWorthIt(buffer, tried: tried, line: false) else {
            return .needMoreData
        }
        let options = self.options
        let result = buffer.withUnsafeReadableBytes { HTTP1RequestHeadParser.parse($0, options: options) }
        switch result {
        case .incomplete:
            if buffer.readableBytes > self.maxHeadBytes { return self.failTooLarge() }
            self.state = .head(tried: buffer.readableBytes)
            return .needMoreData
        case .refused(let error):
            return self.fail(error)
        case .complete(let head):
            if head.length > self.maxHeadBytes { return self.failTooLarge() }
            switch head.framing {
            case .none: self.state = .body(.none)
            case .contentLength(let length): self.state = .body(.contentLength(length))
            case .chunked: self.state = .body(.chunked)
            }
            return .head(head, buffer.readSlice(length: head.length)!)
        }
    }

    private mutating func fail(_ error: HTTP1ParseError) -> Event {
        self.state = .failed
        return .refused(error)
    }

    private mutating func failTooLarge() -> Event {
        self.state = .failed
        return .headTooLarge
    }
}
