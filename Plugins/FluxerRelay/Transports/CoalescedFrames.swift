import NIOCore

/// Whole WebSocket frames waiting for one write to the socket, in the order they were written.
///
/// A fan-out writes the same shared frame to every subscriber. The first frame between two
/// flushes is kept as that shared buffer (no copy); when a second one comes, both are copied
/// into a buffer of the connection's own and later ones appended, so a connection that fell a
/// few publications behind sends them all in one write, as nats-server does, instead of one
/// pending write per frame. Frames stay whole and in order: the bytes are the frames one after
/// another, exactly what separate writes would have put on the wire.
struct CoalescedFrames {
    /// The frames waiting: with one, the buffer the caller passed (often shared by many
    /// connections); with two or more, a buffer of this connection's own holding them all.
    /// Optional rather than an empty buffer: NIO's empty buffers share one storage, whose
    /// reference count every event loop would then write to.
    private var buffer: ByteBuffer?
    private var frames = 0

    /// The first capacity of a joined buffer: a few small pushes fit without growing it.
    static let initialJoinedCapacity = 2048

    /// The bytes waiting.
    var readableBytes: Int { self.buffer?.readableBytes ?? 0 }

    var isEmpty: Bool { self.frames == 0 }

    /// Appends `frame` after the frames already waiting.
    mutating func append(_ frame: ByteBuffer) {
        guard frame.readableBytes > 0 else { return }
        switch self.frames {
        case 0:
            self.buffer = frame
        case 1:
            let first = self.buffer!
            var joined = ByteBufferAllocator().buffer(
                capacity: max(Self.initialJoinedCapacity, first.readableBytes + frame.readableBytes)
            )
            joined.writeImmutableBuffer(first)
            joined.writeImmutableBuffer(frame)
            self.buffer = joined
        default:
            // In place: the joined buffer is this connection's alone.
            self.buffer!.writeImmutableBuffer(frame)
        }
        self.frames += 1
    }

    /// Everything waiting, as one buffer, and empties the queue; nil when nothing waits.
    mutating func take() -> ByteBuffer? {
        let taken = self.buffer
        self.buffer = nil
        self.frames = 0
        return taken
    }
}
