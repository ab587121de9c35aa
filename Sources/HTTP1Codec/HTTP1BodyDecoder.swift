import NIOCore
import NIOHTTP1

/// Decodes a message body once its head has said how the body is framed (RFC 9112 6): counted
/// down from `Content-Length`, decoded from chunked framing (``HTTP1ChunkSizeLine``, then
/// ``HTTP1TrailerSection``), or, for a response, every byte until the connection closes.
///
/// The body half of ``HTTP1RequestDecoder`` and ``HTTP1ResponseDecoder``, so both read chunked
/// framing with the same code. Body parts are slices of the receive buffer, never copies; the
/// caller acts on one event at a time, and after ``Event/end(_:)`` reads its next head.
struct HTTP1BodyDecoder: Sendable {
    enum Event {
        case body(ByteBuffer)
        /// The body's end, with the trailer fields of a chunked body, if it had any.
        case end(HTTPHeaders?)
        case needMoreData
        /// The trailer section grew past the limit before it ended.
        case trailersTooLarge
        case refused(HTTP1ParseError)
    }

    private enum State: Sendable {
        case contentLength(remaining: Int)
        /// Waiting for a chunk-size line; `tried` bytes of it were parsed last time, incomplete.
        case chunkSize(tried: Int)
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(tried: Int)
        /// Every byte is body until the connection closes.
        case untilClose
        /// The body's end is the next event (no body, or its last byte was passed on).
        case endDue
    }

    private var state: State

    private init(_ state: State) {
        self.state = state
    }

    /// No body: the end is the next event.
    static let none = HTTP1BodyDecoder(.endDue)
    static let chunked = HTTP1BodyDecoder(.chunkSize(tried: 0))
    /// A response body delimited by the connection's close (RFC 9112 6.3, rule 8).
    static let untilClose = HTTP1BodyDecoder(.untilClose)

    static func contentLength(_ length: Int) -> HTTP1BodyDecoder {
        length > 0 ? HTTP1BodyDecoder(.contentLength(remaining: length)) : .none
    }

    /// Whether the connection's close ends the body (nothing of it is cut short).
    var endsWithInput: Bool {
        switch self.state {
        case .untilClose, .endDue: true
        default: false
        }
    }

    /// The next event from `buffer`, whose reader index moves past what it consumed; a trailer
    /// section may hold up to `maxTrailerBytes`.
    mutating func next(_ buffer: inout ByteBuffer, maxTrailerBytes: Int) -> Event {
        switch self.state {
        case .contentLength(let remaining):
            guard buffer.readableBytes > 0 else { return .needMoreData }
            let length = min(remaining, buffer.readableBytes)
            self.state = length == remaining ? .endDue : .contentLength(remaining: remaining - length)
            return .body(buffer.readSlice(length: length)!)
        case .chunkSize(let tried):
            guard buffer.readableBytes > 0, HTTP1Reparsing.isWorthIt(buffer, tried: tried, line: true) else {
                return .needMoreData
            }
            switch buffer.withUnsafeReadableBytes(HTTP1ChunkSizeLine.parse) {
            case .incomplete:
                // A size line is a few digits; extensions are bounded like a head.
                if buffer.readableBytes > maxTrailerBytes { return .refused(HTTP1ParseError(.invalidChunkSize)) }
                self.state = .chunkSize(tried: buffer.readableBytes)
                return .needMoreData
            case .refused(let error):
                return .refused(error)
            case .complete(let size, let length):
                buffer.moveReaderIndex(forwardBy: length)
                self.state = size == 0 ? .trailers(tried: 0) : .chunkData(remaining: size)
                return self.next(&buffer, maxTrailerBytes: maxTrailerBytes)
            }
        case .chunkData(let remaining):
            guard buffer.readableBytes > 0 else { return .needMoreData }
            let length = min(remaining, buffer.readableBytes)
            self.state = length == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - length)
            return .body(buffer.readSlice(length: length)!)
        case .chunkDataEnd:
            let cr = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self)
            let lf = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self)
            if let cr, cr != UInt8(ascii: "\r") { return .refused(HTTP1ParseError(.missingChunkDataEnd)) }
            if let lf, lf != UInt8(ascii: "\n") { return .refused(HTTP1ParseError(.missingChunkDataEnd)) }
            guard lf != nil else { return .needMoreData }
            buffer.moveReaderIndex(forwardBy: 2)
            self.state = .chunkSize(tried: 0)
            return self.next(&buffer, maxTrailerBytes: maxTrailerBytes)
        case .trailers(let tried):
            guard HTTP1Reparsing.isWorthIt(buffer, tried: tried, line: false) else { return .needMoreData }
            switch buffer.withUnsafeReadableBytes(HTTP1TrailerSection.parse) {
            case .incomplete:
                if buffer.readableBytes > maxTrailerBytes { return .trailersTooLarge }
                self.state = .trailers(tried: buffer.readableBytes)
                return .needMoreData
            case .refused(let error):
                return .refused(error)
            case .complete(let fields, let length):
                var trailers: HTTPHeaders?
                if !fields.isEmpty {
                    var headers = HTTPHeaders()
                    for field in fields {
                        headers.add(name: Self.string(buffer, field.name), value: Self.string(buffer, field.value))
                    }
                    trailers = headers
                }
                buffer.moveReaderIndex(forwardBy: length)
                self.state = .endDue
                return .end(trailers)
            }
        case .untilClose:
            guard buffer.readableBytes > 0 else { return .needMoreData }
            return .body(buffer.readSlice(length: buffer.readableBytes)!)
        case .endDue:
            return .end(nil)
        }
    }

    private static func string(_ buffer: ByteBuffer, _ range: Range<Int>) -> String {
        buffer.getString(at: buffer.readerIndex + range.lowerBound, length: range.count) ?? ""
    }
}
