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

    init(maxBulkLength: Int = 64 * 1024 * 1024, maxDepth: Int = 32) {
        self.maxBulkLength = maxBulkLength
        self.maxDepth = maxDepth
    }

    mutating func decode(buffer: inout ByteBuffer) throws -> RESPValue? {
        var copy = buffer
        guard let value = try self.parseValue(&copy, depth: 0) else { return nil }
        buffer.moveReaderIndex(to: copy.readerIndex)
        return value
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RESPValue? {
        try self.decode(buffer: &buffer)
    }

    private func parseValue(_ buffer: inout ByteBuffer, depth: Int) throws -> RESPValue? {
        guard depth <= self.maxDepth else {
            throw RedisClientError.protocolError("reply nested deeper than \(self.maxDepth) levels")
        }
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
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
            guard let count = try self.readInteger(&buffer) else { return nil }
            if count < 0 { return .null }
            var elements: [RESPValue] = []
            elements.reserveCapacity(Int(min(count, 1024)))
            for _ in 0..<count {
                guard let element = try self.parseValue(&buffer, depth: depth + 1) else { return nil }
                elements.append(element)
            }
            return type == UInt8(ascii: ">") ? .push(elements) : .array(elements)
        case UInt8(ascii: "%"):
            guard let pairs = try self.readPairs(&buffer, depth: depth) else { return nil }
            return .map(pairs)
        case UInt8(ascii: "|"):
            guard try self.readPairs(&buffer, depth: depth) != nil else { return nil }
            return try self.parseValue(&buffer, depth: depth)
        default:
            throw RedisClientError.protocolError("unknown reply type byte \(type)")
        }
    }

    private func readPairs(
        _ buffer: inout ByteBuffer,
        depth: Int
    ) throws -> [(key: RESPValue, value: RESPValue)]? {
        guard let count = try self.readInteger(&buffer) else { return nil }
        guard count >= 0 else { throw RedisClientError.protocolError("negative map size \(count)") }
        var pairs: [(key: RESPValue, value: RESPValue)] = []
        pairs.reserveCapacity(Int(min(count, 1024)))
        for _ in 0..<count {
            guard let key = try self.parseValue(&buffer, depth: depth + 1),
                let value = try self.parseValue(&buffer, depth: depth + 1)
            else { return nil }
            pairs.append((key, value))
        }
        return pairs
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
