import DequeModule
import EthicalGateway
import Foundation
import Logging
import NIOCore
import NIOWebSocket

/// Replies and pushes on their way out: written at once while the socket keeps up, else queued
/// with the namespace's slow-consumer policy; one flush per loop tick.
extension RelayConnection {
    func reply(id: UInt64, method: String, result: WireJSON) {
        guard id > 0 else { return }
        let frame: ByteBuffer
        switch self.format {
        case .json: frame = Push.frame(Push.reply(id: id, method: method, result: result))
        case .protobuf: frame = ProtobufReplies.frame(ProtobufReplies.reply(id: id, method: method, result: result))
        }
        self.send(frame, publicationOf: nil, options: nil)
    }

    func reply(id: UInt64, error: RelayError) {
        guard id > 0 else { return }
        let frame: ByteBuffer
        switch self.format {
        case .json: frame = Push.frame(Push.error(id: id, error))
        case .protobuf: frame = ProtobufReplies.frame(ProtobufReplies.error(id: id, error))
        }
        self.send(frame, publicationOf: nil, options: nil)
    }

    /// An `unsubscribe` push for `channel`, framed in the connection's format.
    func unsubscribePush(channel: String, _ reason: RelayUnsubscribe) -> ByteBuffer {
        switch self.format {
        case .json: return Push.frame(Push.unsubscribe(channel: channel, reason))
        case .protobuf: return ProtobufReplies.frame(ProtobufReplies.unsubscribe(channel: channel, reason))
        }
    }

    /// A `subscribe` push for `channel` (the server subscribed the connection) with the
    /// position fields of its subscribe `result`, framed in the connection's format.
    func subscribePush(channel: String, _ result: [String: WireJSON]) -> ByteBuffer {
        switch self.format {
        case .json:
            let fields = result.filter { ["recoverable", "positioned", "epoch", "offset"].contains($0.key) }
            return Push.frame(Push.encode(channel: channel, kind: "subscribe", body: .object(fields)))
        case .protobuf:
            return ProtobufReplies.frame(ProtobufReplies.subscribe(channel: channel, result: .object(result)))
        }
    }

    /// Writes a whole frame (``Push/frame(_:)``) at once while the socket keeps up; otherwise
    /// queues it, and applies the namespace's slow-consumer policy once the queue is over
    /// `maxQueuedBytes`.
    func send(_ frame: ByteBuffer, publicationOf channel: String?, options: NamespaceOptions?) {
        guard self.phase != .closed, self.transport.isOpen else { return }
        if self.queue.isEmpty && self.transport.isWritable {
            self.transport.write(frame: frame)
            self.scheduleFlush()
            return
        }
        if self.queue.isEmpty {
            self.transport.whenWritable { [weak self] in self?.drainQueue() }
        }
        self.queue.append(Queued(frame: frame, channel: channel))
        self.queuedBytes += frame.readableBytes
        guard self.queuedBytes > self.configuration.maxQueuedBytes else { return }
        if options?.slowConsumer == .disconnect || channel == nil {
            self.hub.counters.slowDisconnects += 1
            self.disconnect(.slow)
        } else {
            self.dropOldestPublications()
        }
    }

    /// Drops queued publications, oldest first, until the queue is at half its limit. Every
    /// channel that loses one loses all its queued publications and gets an "insufficient
    /// state" unsubscribe: the client subscribes again and recovers from the last publication it
    /// really got, so nothing is skipped. When a server-side subscription loses one, the client
    /// cannot subscribe again: the connection is closed with 3010 and recovers on reconnect.
    func dropOldestPublications() {
        var affected: Set<String> = []
        var remaining = self.queuedBytes
        let target = self.configuration.maxQueuedBytes / 2
        for entry in self.queue where remaining > target {
            guard let channel = entry.channel else { continue }
            affected.insert(channel)
            remaining -= entry.frame.readableBytes
        }
        var kept = Deque<Queued>()
        while let entry = self.queue.popFirst() {
            if let channel = entry.channel, affected.contains(channel) {
                self.queuedBytes -= entry.frame.readableBytes
                self.hub.counters.publicationsDropped += 1
                self.hub.metrics.dropped(ChannelName(channel)?.namespace ?? "default").increment()
            } else {
                kept.append(entry)
            }
        }
        self.queue = kept
        if affected.contains(where: { self.subscriptions[$0]?.serverSide == true }) {
            // Lost publications of a server-side subscription are recovered by reconnecting.
            self.disconnect(.insufficientState)
            return
        }
        for channel in affected.sorted() where self.subscriptions[channel] != nil {
            self.dropSubscription(channel)
            let push = self.unsubscribePush(channel: channel, .insufficientState)
            self.queue.append(Queued(frame: push, channel: nil))
            self.queuedBytes += push.readableBytes
        }
        if self.queuedBytes > self.configuration.maxQueuedBytes {
            self.hub.counters.slowDisconnects += 1
            self.disconnect(.slow)
        }
    }

    func drainQueue() {
        guard self.phase != .closed, self.transport.isOpen else { return }
        var wrote = false
        while self.transport.isWritable, let entry = self.queue.popFirst() {
            self.queuedBytes -= entry.frame.readableBytes
            self.transport.write(frame: entry.frame)
            wrote = true
        }
        if wrote { self.transport.flush() }
        if !self.queue.isEmpty {
            self.transport.whenWritable { [weak self] in self?.drainQueue() }
        }
    }

    /// One flush per loop tick, however many pushes arrived in it; the hub runs the flushes of
    /// all its connections in one task.
    func scheduleFlush() {
        guard !self.flushScheduled else { return }
        self.flushScheduled = true
        self.hub.requestFlush(self)
    }

    /// Called by the hub: sends what was written since the last flush.
    func performFlush() {
        self.flushScheduled = false
        self.transport.flush()
    }
}
