import NIOCore

/// Decodes RESP2 and RESP3 replies from bytes, whatever way they are split across reads.
///
/// A reply is only consumed once it is complete, so one split anywhere is simply waited out.
/// Attributes (`|`) are read and dropped. A top-level error reply becomes ``RESPValue/error(_:)``
/// and a push frame ``RESPValue/push(_:)``; the command handler tells them from replies.
/// Bulk strings longer than `maxBulkLength`, nesting deeper than `maxDepth`, a line longer than
/// `maxBulkLength` and unknown type bytes are protocol errors, so a broken or hostile server
/// cannot make the client buffer without bound.
struct RESPDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = RESPValue

    let maxBulkLength: Int
    let maxDepth: Int

    /// An aggregate whose header was read and whose elements are still arriving.
    private struct Frame {
        enum Kind { case array, push, map, attribute }
        let kind: Kind
        /// Elements still to read (a map's are keys and values, twice its size).
        var remaining: Int
        var elements: [RESPValue]
    }

    /// What one step of parsing read: a whole value, or the header of an aggregate.
    private enum Token {
        case value(RESPValue)
        case aggregate(Frame.Kind, count: Int)
    }

    /// The aggregates being read, outermost first. Elements are consumed as they complete, so a
    /// large reply arriving over many reads is parsed once, not again from its start on every
    /// read (which made a 66 MB history reply cost seconds of an event loop).
    private var stack: [Frame] = []

    init(maxBulkLength: Int = 64 * 1024 * 1024, maxDepth: Int = 32) {
        self.maxBulkLength = maxBulkLength
        self.maxDepth = maxDepth
    }

    mutating func decode(buffer: inout ByteBuffer) throws -> RESPValue? {
        while true {
            var copy = buffer
            guard let token = try self.parseToken(&copy) else { return nil }
            buffer.moveReaderIndex(to: copy.readerIndex)
            var completed: RESPValue
            switch token {
            case .aggregate(let kind, let count):
                if count > 0 {
                    guard self.stack.count < self.maxDepth else {
                        throw RedisClientError.protocolError("reply nested deeper than \(self.maxDepth) levels")
                    }
                    let total = kind == .map || kind == .attribute ? count * 2 : count
                    var elements: [RESPValue] = []
                    elements.reserveCapacity(min(total, 1024))
                    self.stack.append(Frame(kind: kind, remaining: total, elements: elements))
                    continue
                }
                guard let empty = Self.build(Frame(kind: kind, remaining: 0, elements: [])) else { continue }
                completed = empty
            case .value(let value):
                completed = value
            }
            // Hand the value to the aggregates it completes, innermost first.
            while true {
                guard !self.stack.isEmpty else { return completed }
                let top = self.stack.count - 1
                self.stack[top].elements.append(completed)
                self.stack[top].remaining -= 1
                guard self.stack[top].remaining == 0 else { break }
                let frame = self.stack.removeLast()
                // An attribute is read and dropped: the value it annotates follows.
                guard let value = Self.build(frame) else { break }
                completed = value
            }
        }
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RESPValue? {
        try self.decode(buffer: &buffer)
    }

    /// The value of a complete aggregate; `nil` for an attribute, which is dropped.
    private static func build(_ frame: Frame) -> RESPValue? {
        switch frame.kind {
        case .array: return .array(frame.elements)
        case .push: return .push(frame.elements)
        case .attribute: return nil
        case .map:
            var pairs: [(key: RESPValue, value: RESPValue)] = []
            pairs.reserveCapacity(frame.elements.count / 2)
            var index = 0
            while index + 1 < frame.elements.count {
                pairs.append((frame.elements[index], frame.elements[index + 1]))
                index += 2
            }
            return .map(pairs)
        }
    }

    /// Reads one value, or one aggregate's header; `nil` (consuming nothing) when incomplete.
    private func parseToken(_ buffer: inout ByteBuffer) throws -> Token? {
        guard let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        switch type {
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
            buffer.moveReaderIndex(forwardBy: 1)
            guard let count = try self.readInteger(&buffer) else { return nil }
            if count < 0 { return .value(.null) }
            return .aggregate(type == UInt8(ascii: ">") ? .push : .array, count: try self.checkedCount(count))
        case UInt8(ascii: "%"), UInt8(ascii: "|"):
            buffer.moveReaderIndex(forwardBy: 1)
            guard let count = try self.readInteger(&buffer) else { return nil }
            guard count >= 0 else { throw RedisClientError.protocolError("negative map size \(count)") }
            return .aggregate(type == UInt8(ascii: "%") ? .map : .attribute, count: try self.checkedCount(count))
        default:
            return try self.parseScalar(&buffer).map { .value($0) }
        }
    }

    /// An aggregate's size, refused when no real reply could have it (it would only make the
    /// client reserve memory for elements that never come).
    private func checkedCount(_ count: Int64) throws -> Int {
        guard count <= Int64(self.maxBulkLength) else {
            throw RedisClientError.protocolError("aggregate of \(count) elements")
        }
        return Int(count)
    }

    /// Reads a value that is not an aggregate.
    private func parseScalar(_ buffer: inout ByteBuffer) throws -> RESPValue? {
        guard let type = buffer.readInteger(as: UInt8.self) else { return nil }
        switch type {
        case UInt8(ascii: "+"):
            return try self.readLine(&buffer).map { .simpleString($0) }
        case UInt8(ascii: "-"):
            return try self.readLine(&buffer).map { .error(RedisServerError(message: String(buffer: $0))) }
        case UInt8(ascii: ":"):
            return try self.readInteger(&buffer).map { .integer($0) }
        case UInt8(ascii: "_"):
            return try self.readLine(&buffer).map { _ in .null }
        case UInt8(ascii: ","):
            guard let line = try self.readLine(&buffer) else { return nil }
            guard let value = Double(String(buffer: line)) else {
                throw RedisClientError.protocolError("bad double '\(String(buffer: line))'")
            }
            return .double(value)
        case UInt8(ascii: "#"):
            guard let line = try self.readLine(&buffer) else { return nil }
            switch line.getInteger(at: line.readerIndex, as: UInt8.self) {
            case UInt8(ascii: "t") where line.readableBytes == 1: return .boolean(true)
            case UInt8(ascii: "f") where line.readableBytes == 1: return .boolean(false)
            default: throw RedisClientError.protocolError("bad boolean '\(String(buffer: line))'")
            }
        case UInt8(ascii: "("):
            return try self.readLine(&buffer).map { .bigNumber(String(buffer: $0)) }
        case UInt8(ascii: "$"):
            return try self.readBulk(&buffer).map { $0.map { .bulkString($0) } ?? .null }
        case UInt8(ascii: "!"):
            guard let bulk = try self.readBulk(&buffer) else { return nil }
            return .error(RedisServerError(message: bulk.map { String(buffer: $0) } ?? ""))
        case UInt8(ascii: "="):
            guard let bulk = try self.readBulk(&buffer) else { return nil }
            guard var text = bulk, text.readableBytes >= 4 else {
                throw RedisClientError.protocolError("verbatim string without its format prefix")
            }
            text.moveReaderIndex(forwardBy: 4)
            return .bulkString(text)
        default:
            throw RedisClientError.protocolError("unknown reply type byte \(type)")
        }
    }

    /// Reads a length-prefixed string: `nil` when incomplete, `.some(nil)` for the null bulk string.
    private func readBulk(_ buffer: inout ByteBuffer) throws -> ByteBuffer?? {
        guard let length = try self.readInteger(&buffer) else { return nil }
        if length < 0 { return .some(nil) }
        guard length <= self.maxBulkLength else {
            throw RedisClientError.protocolError("bulk string of \(length) bytes exceeds \(self.maxBulkLength)")
        }
        guard buffer.readableBytes >= Int(length) + 2 else { return nil }
        let bytes = buffer.readSlice(length: Int(length))!
        guard buffer.readInteger(as: UInt16.self) == 0x0D0A else {
            throw RedisClientError.protocolError("bulk string not followed by CRLF")
        }
        return .some(bytes)
    }

    private func readInteger(_ buffer: inout ByteBuffer) throws -> Int64? {
        guard let line = try self.readLine(&buffer) else { return nil }
        guard let value = Int64(String(buffer: line)) else {
            throw RedisClientError.protocolError("bad integer '\(String(buffer: line))'")
        }
        return value
    }

    private func readLine(_ buffer: inout ByteBuffer) throws -> ByteBuffer? {
        let view = buffer.readableBytesView
        guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > self.maxBulkLength {
                throw RedisClientError.protocolError("line longer than \(self.maxBulkLength) bytes")
            }
            return nil
        }
        guard lf > view.startIndex, view[lf - 1] == UInt8(ascii: "\r") else {
            throw RedisClientError.protocolError("line not ended by CRLF")
        }
        let line = buffer.readSlice(length: lf - 1 - view.startIndex)!
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }
}
