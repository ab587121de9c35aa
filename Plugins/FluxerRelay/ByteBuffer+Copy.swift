import NIOCore

extension ByteBuffer {
    /// The readable bytes in storage of their own, shared with no other buffer.
    func copy() -> ByteBuffer {
        var copy = ByteBufferAllocator().buffer(capacity: self.readableBytes)
        copy.writeImmutableBuffer(self)
        return copy
    }
}
