import CZlib
public import NIOCore

/// Raw DEFLATE (no zlib header) for permessage-deflate: each message ends with a sync flush
/// whose trailing `00 00 FF FF` goes unsent (RFC 7692 §7.2.1) and is added back on receipt.
public final class DeflateCompressor {
    private let stream: UnsafeMutablePointer<z_stream>
    private let resetsAfterMessage: Bool

    /// - Parameters:
    ///   - windowBits: the window the peer decompresses with, 8 to 15. zlib cannot compress
    ///     with an 8-bit window (it uses 9), so for 8 the compressor finds no repeated strings
    ///     at all (Huffman coding only): every stream it writes is then valid for any window.
    ///   - noContextTakeover: forget earlier messages after each one.
    public init(windowBits: Int, noContextTakeover: Bool) {
        self.stream = .allocate(capacity: 1)
        self.stream.initialize(to: z_stream())
        self.resetsAfterMessage = noContextTakeover
        let strategy = windowBits < 9 ? Z_HUFFMAN_ONLY : Z_DEFAULT_STRATEGY
        let status = deflateInit2_(
            self.stream,
            Z_DEFAULT_COMPRESSION,
            Z_DEFLATED,
            -Int32(max(9, windowBits)),
            8,
            strategy,
            zlibVersion(),
            Int32(MemoryLayout<z_stream>.size)
        )
        precondition(status == Z_OK, "deflateInit2 failed: \(status)")
    }

    deinit {
        deflateEnd(self.stream)
        self.stream.deallocate()
    }

    /// The compressed form of a whole message, without the sync flush's `00 00 FF FF`.
    public func compress(_ message: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var output = allocator.buffer(capacity: message.readableBytes / 2 + 64)
        message.withUnsafeReadableBytes { input in
            self.stream.pointee.next_in = UnsafeMutablePointer(
                mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self)
            )
            self.stream.pointee.avail_in = uInt(input.count)
            repeat {
                output.reserveCapacity(minimumWritableBytes: max(64, Int(self.stream.pointee.avail_in) / 2 + 64))
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { space in
                    self.stream.pointee.next_out = space.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    self.stream.pointee.avail_out = uInt(space.count)
                    deflate(self.stream, Z_SYNC_FLUSH)
                    return space.count - Int(self.stream.pointee.avail_out)
                }
                // A sync flush is complete once zlib leaves output space unused.
            } while self.stream.pointee.avail_out == 0
            self.stream.pointee.next_in = nil
        }
        if output.readableBytes >= 4 { output.moveWriterIndex(to: output.writerIndex - 4) }
        if self.resetsAfterMessage { deflateReset(self.stream) }
        return output
    }
}

/// Inflates permessage-deflate messages, a frame at a time, up to a size limit.
public final class DeflateDecompressor {
    private let stream: UnsafeMutablePointer<z_stream>

    public init() {
        self.stream = .allocate(capacity: 1)
        self.stream.initialize(to: z_stream())
        let status = inflateInit2_(self.stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(status == Z_OK, "inflateInit2 failed: \(status)")
    }

    deinit {
        inflateEnd(self.stream)
        self.stream.deallocate()
    }

    /// Why inflating stopped.
    public enum Failure: Error {
        /// The message inflates to more than the limit.
        case tooLarge
        /// Not valid DEFLATE data.
        case corrupt
    }

    /// The sync-flush tail the sender left off; fed after a message's last frame.
    public static let messageTail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]

    /// Inflates `input`, appending to `output`, which must stay within `limit` bytes.
    public func inflate(_ input: UnsafeRawBufferPointer, into output: inout ByteBuffer, limit: Int) throws(Failure) {
        guard input.count > 0 else { return }
        self.stream.pointee.next_in = UnsafeMutablePointer(
            mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self)
        )
        self.stream.pointee.avail_in = uInt(input.count)
        defer { self.stream.pointee.next_in = nil }
        while true {
            let room = limit - output.readableBytes
            // One byte past the limit tells "exactly at the limit" from "over it".
            let chunk = min(max(room + 1, 1), max(1024, input.count * 4))
            var status: Int32 = Z_OK
            output.reserveCapacity(minimumWritableBytes: chunk)
            let produced = output.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { space in
                let usable = min(space.count, chunk)
                self.stream.pointee.next_out = space.baseAddress?.assumingMemoryBound(to: Bytef.self)
                self.stream.pointee.avail_out = uInt(usable)
                status = CZlib.inflate(self.stream, Z_SYNC_FLUSH)
                return usable - Int(self.stream.pointee.avail_out)
            }
            if output.readableBytes > limit { throw .tooLarge }
            switch status {
            case Z_OK, Z_BUF_ERROR:
                // Z_BUF_ERROR: no progress possible, i.e. all input consumed and output flushed.
                if self.stream.pointee.avail_in == 0 && produced < chunk { return }
                if status == Z_BUF_ERROR && produced == 0 { return }
            case Z_STREAM_END:
                // A final block ends the DEFLATE stream; the next message starts a new one.
                inflateReset(self.stream)
                if self.stream.pointee.avail_in == 0 { return }
            default:
                throw .corrupt
            }
        }
    }

    /// Forgets earlier messages (the peer compresses each message on its own).
    public func reset() {
        inflateReset(self.stream)
    }
}
