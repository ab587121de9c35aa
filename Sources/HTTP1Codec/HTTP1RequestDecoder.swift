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
        case contentLength(remaining: Int)
        /// Waiting for a chunk-size line; `tried` bytes of it were parsed last time, incomplete.
        case chunkSize(tried: Int)
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(tried: Int)
        /// The request's end is the next event.
        case endDue
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
        case .contentLength(let remaining):
            guard buffer.readableBytes > 0 else { return .needMoreData }
            let length = min(remaining, buffer.readableBytes)
            self.state = length == remaining ? .endDue : .contentLength(remaining: remaining - length)
            return .body(buffer.readSlice(length: length)!)
        case .chunkSize(let tried):
            guard buffer.readableBytes > 0, Self.worthParsing(buffer, tried: tried, line: true) else {
                return .needMoreData
            }
            let line = buffer.withUnsafeReadableBytes(HTTP1ChunkSizeLine.parse)
            switch line {
            case .incomplete:
                // A size line is a few digits; extensions are bounded like a head.
                if buffer.readableBytes > self.maxHeadBytes { return self.fail(.invalidChunkSize) }
                self.state = .chunkSize(tried: buffer.readableBytes)
                return .needMoreData
            case .refused(let error):
                return self.fail(error)
            case .complete(let size, let length):
                buffer.moveReaderIndex(forwardBy: length)
                self.state = size == 0 ? .trailers(tried: 0) : .chunkData(remaining: size)
                return self.next(&buffer)
            }
        case .chunkData(let remaining):
            guard buffer.readableBytes > 0 else { return .needMoreData }
            let length = min(remaining, buffer.readableBytes)
            self.state = length == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - length)
            return .body(buffer.readSlice(length: length)!)
        case .chunkDataEnd:
            let cr = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self)
            let lf = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self)
            if let cr, cr != UInt8(ascii: "\r") { return self.fail(.missingChunkDataEnd) }
            if let lf, lf != UInt8(ascii: "\n") { return self.fail(.missingChunkDataEnd) }
            guard lf != nil else { return .needMoreData }
            buffer.moveReaderIndex(forwardBy: 2)
            self.state = .chunkSize(tried: 0)
            return self.next(&buffer)
        case .trailers(let tried):
            guard Self.worthParsing(buffer, tried: tried, line: false) else { return .needMoreData }
            switch buffer.withUnsafeReadableBytes(HTTP1TrailerSection.parse) {
            case .incomplete:
                if buffer.readableBytes > self.maxHeadBytes { return self.failTooLarge() }
                self.state = .trailers(tried: buffer.readableBytes)
                return .needMoreData
            case .refused(let error):
                return self.fail(error)
            case .complete(let fields, let length):
                var trailers: HTTPHeaders?
                if !fields.isEmpty {
                    var headers = HTTPHeaders()
                    for field in fields {
                        headers.add(
                            name: Self.string(buffer, field.name),
                            value: Self.string(buffer, field.value)
                        )
                    }
                    trailers = headers
                }
                buffer.moveReaderIndex(forwardBy: length)
                self.state = .head(tried: 0)
                return .end(trailers)
            }
        case .endDue:
            self.state = .head(tried: 0)
            return .end(nil)
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
        case .failed, .endDue:
            return nil
        case .contentLength, .chunkSize, .chunkData, .chunkDataEnd, .trailers:
            return HTTP1ParseError(.incompleteMessage)
        }
    }

    private mutating func nextHead(_ buffer: inout ByteBuffer, tried: Int) -> Event {
        guard buffer.readableBytes > 0, Self.worthParsing(buffer, tried: tried, line: false) else {
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
            case .none: self.state = .endDue
            case .contentLength(let length): self.state = .contentLength(remaining: length)
            case .chunked: self.state = .chunkSize(tried: 0)
            }
            return .head(head, buffer.readSlice(length: head.length)!)
        }
    }

    /// Whether parsing a head, trailer section or (`line`) chunk-size line again can tell more
    /// than last time (`tried` bytes, incomplete): the bytes doubled, or the new ones may end it
    /// (a line feed for a line; for a section a line feed followed by CRLF or by another line
    /// feed, which the parser then refuses).
    private static func worthParsing(_ buffer: ByteBuffer, tried: Int, line: Bool) -> Bool {
        let count = buffer.readableBytes
        if tried == 0 || count >= 2 * tried { return true }
        return buffer.withUnsafeReadableBytes { bytes in
            if line {
                for index in (tried - 1)..<count where bytes[index] == UInt8(ascii: "\n") { return true }
                return false
            }
            var index = max(tried - 2, 0)
            while index < count - 1 {
                if bytes[index] == UInt8(ascii: "\n") {
                    let following = bytes[index + 1]
                    if following == UInt8(ascii: "\n") || following == UInt8(ascii: "\r") { return true }
                }
                index += 1
            }
            return false
        }
    }

    private mutating func fail(_ error: HTTP1ParseError) -> Event {
        self.state = .failed
        return .refused(error)
    }

    private mutating func fail(_ reason: HTTP1ParseError.Reason) -> Event {
        self.fail(HTTP1ParseError(reason))
    }

    private mutating func failTooLarge() -> Event {
        self.state = .failed
        return .headTooLarge
    }

    private static func string(_ buffer: ByteBuffer, _ range: Range<Int>) -> String {
        buffer.getString(at: buffer.readerIndex + range.lowerBound, length: range.count) ?? ""
    }
}
