import DequeModule
import Foundation
import HeapModule
import NIOConcurrencyHelpers
public import NIOCore

/// The embedded engine: streams and presence in this process's memory. History
/// lives as long as the process; a restart starts every channel in a new epoch, so clients that
/// recover across it are told they missed publications (`recovered: false`).
///
/// A channel holds state only while it is worth keeping: while this node has subscribers of it
/// (its stream position, so they can recover), while its history lives (until the namespace's
/// `historyTTLSeconds` after the last publication), and while it has presence. Reading the
/// history of a channel that holds nothing creates nothing, so clients asking about any channel
/// name cannot grow the engine.
///
/// Channels are spread over ``shardCount`` shards, each under its own lock, so publishes to
/// different channels rarely wait for each other; a publication's JSON is encoded before the
/// lock is taken, and only its offset is written under it.
public final class MemoryEngine: RelayEngine {
    private struct Stream {
        var epoch: String
        var top: UInt64 = 0
        var publications = Deque<RelayPublication>()
        var lastPublishedAt: Double = 0
        /// When the publications expire: the last publication's time plus its namespace's TTL.
        var expiresAt: Double = 0
        /// Whether an entry for this stream waits in ``State/expiries``.
        var expiryQueued = false
    }

    /// When a stream's history is due to expire; the stream's own `expiresAt` wins when a later
    /// publication moved it.
    private struct Expiry: Comparable {
        let at: Double
        let channel: String

        static func < (lhs: Expiry, rhs: Expiry) -> Bool { lhs.at < rhs.at }
        static func == (lhs: Expiry, rhs: Expiry) -> Bool { lhs.at == rhs.at && lhs.channel == rhs.channel }
    }

    private struct State {
        var streams: [String: Stream] = [:]
        /// Per channel, how many of this node's event loops have subscribers of it.
        var retained: [String: Int] = [:]
        /// At most one entry per stream with publications, soonest first.
        var expiries = Heap<Expiry>()
        var presence: [String: [String: ClientInfo]] = [:]
        /// `channel \0 key` to the first publication's outcome and when the key is forgotten.
        var idempotency: [String: (outcome: PublishOutcome, expiresAt: Double)] = [:]
        var lastIdempotencySweep: Double = 0
        /// Where events go; each shard has its copy, read under the lock its publish takes
        /// anyway, so delivering needs no lock shared by every channel.
        var deliver = RelayEventHandler()
    }

    /// Shards of channel state; a channel's shard is fixed by its name's hash.
    static let shardCount = 64
    private let shards: [NIOLockedValueBox<State>] = (0..<MemoryEngine.shardCount).map { _ in
        NIOLockedValueBox(State())
    }

    public init() {}

    public func start(delivering handler: @escaping @Sendable (RelayEvent) -> Void) {
        for shard in self.shards { shard.withLockedValue { $0.deliver.call = handler } }
    }

    /// The state holding `channel`.
    private func state(of channel: String) -> NIOLockedValueBox<State> {
        self.shards[Int(ChannelSharding.fnv1a(channel) % UInt64(Self.shardCount))]
    }

    static func newEpoch() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<8).map { _ in alphabet.randomElement()! })
    }

    public func publish(
        channel: String,
        data: WireJSON,
        info: ClientInfo?,
        tags: [String: String],
        history: HistoryPolicy,
        idempotencyKey: String?,
        idempotencyWindow: Double,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<PublishOutcome> {
        let now = Date().timeIntervalSince1970
        let encoded = RelayPublication(offset: 0, data: data, info: info, tags: tags).wire.encoded
        let outcome = self.state(of: channel).withLockedValue { state -> PublishOutcome in
            Self.sweepExpired(&state, now: now)
            let idempotencyEntry = idempotencyKey.map { "\(channel)\u{0}\($0)" }
            if let idempotencyEntry, let seen = state.idempotency[idempotencyEntry], seen.expiresAt > now {
                return PublishOutcome(position: seen.outcome.position, duplicate: true)
            }
            var publication = RelayPublication(offset: 0, data: data, info: info, tags: tags)
            var position: StreamPosition?
            if history.size > 0 {
                var stream = state.streams[channel] ?? Stream(epoch: Self.newEpoch())
                Self.expire(&stream, ttl: history.ttlSeconds, now: now)
                stream.top += 1
                publication = RelayPublication(offset: stream.top, data: data, info: info, tags: tags)
                stream.publications.append(publication)
                while stream.publications.count > history.size { stream.publications.removeFirst() }
                stream.lastPublishedAt = now
                stream.expiresAt = now + Double(history.ttlSeconds)
                if !stream.expiryQueued {
                    state.expiries.insert(Expiry(at: stream.expiresAt, channel: channel))
                    stream.expiryQueued = true
                }
                position = StreamPosition(offset: stream.top, epoch: stream.epoch)
                state.streams[channel] = stream
            }
            let outcome = PublishOutcome(position: position, duplicate: false)
            if let idempotencyEntry {
                state.idempotency[idempotencyEntry] = (outcome, now + idempotencyWindow)
                Self.sweepIdempotency(&state, now: now)
            }
            // Delivered under the lock, so every channel's events leave in offset order.
            state.deliver.call?(
                .encodedPublication(
                    channel: channel,
                    offset: publication.offset,
                    body: RedisPubSubPayload.withOffset(encoded, offset: publication.offset)
                )
            )
            return outcome
        }
        return eventLoop.makeSucceededFuture(outcome)
    }

    /// Drops a stream's publications once its history outlived the TTL; the position stays.
    private static func expire(_ stream: inout Stream, ttl: Int, now: Double) {
        if !stream.publications.isEmpty, now - stream.lastPublishedAt > Double(ttl) {
            stream.publications.removeAll()
        }
    }

    private static func sweepIdempotency(_ state: inout State, now: Double) {
        guard state.idempotency.count > 1024, now - state.lastIdempotencySweep > 1 else { return }
        state.lastIdempotencySweep = now
        state.idempotency = state.idempotency.filter { $0.value.expiresAt > now }
    }

    /// Drops the history of streams whose TTL passed, and the streams themselves when this node
    /// has no subscribers of them. Costs a look at the soonest expiry when nothing is due.
    private static func sweepExpired(_ state: inout State, now: Double) {
        while let due = state.expiries.min, due.at <= now {
            state.expiries.removeMin()
            guard var stream = state.streams[due.channel] else { continue }
            if stream.expiresAt > now {
                // Published again since: due later.
                state.expiries.insert(Expiry(at: stream.expiresAt, channel: due.channel))
                continue
            }
            stream.expiryQueued = false
            stream.publications.removeAll()
            state.streams[due.channel] = state.retained[due.channel] == nil ? nil : stream
        }
    }

    /// Whether a stream holds anything a client could still ask for without a subscriber
    /// keeping its position: publications within their TTL.
    private static func holdsHistory(_ stream: Stream, now: Double) -> Bool {
        !stream.publications.isEmpty && stream.expiresAt > now
    }

    public func history(
        channel: String,
        since: StreamPosition?,
        limit: Int?,
        reverse: Bool,
        history: HistoryPolicy,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<HistoryPage> {
        let now = Date().timeIntervalSince1970
        let page = self.state(of: channel).withLockedValue { state -> HistoryPage in
            Self.sweepExpired(&state, now: now)
            let retained = state.retained[channel] != nil
            // A channel that holds nothing gets a stream only when a subscriber needs its position.
            var stream = state.streams[channel] ?? Stream(epoch: Self.newEpoch())
            Self.expire(&stream, ttl: history.ttlSeconds, now: now)
            if retained || Self.holdsHistory(stream, now: now) {
                state.streams[channel] = stream
            } else {
                state.streams[channel] = nil
            }
            let position = StreamPosition(offset: stream.top, epoch: stream.epoch)
            var selected: [RelayPublication]
            var complete = true
            if let since, reverse {
                // Newest first from just before `since` (Centrifugo's meaning): paging back in time.
                selected = stream.publications.filter { $0.offset < since.offset }
                complete = since.epoch == stream.epoch
            } else if let since {
                let after = since.offset
                selected = stream.publications.filter { $0.offset > after }
                if since.epoch != stream.epoch || after > stream.top {
                    complete = false
                } else if after < stream.top {
                    // Complete only when the first publication after `since` is still kept.
                    complete = selected.first?.offset == after + 1
                }
            } else {
                selected = Array(stream.publications)
            }
            if reverse { selected.reverse() }
            if let limit, limit >= 0, selected.count > limit { selected = Array(selected.prefix(limit)) }
            return HistoryPage(publications: selected, position: position, complete: complete)
        }
        return eventLoop.makeSucceededFuture(page)
    }

    public func removeHistory(channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        self.state(of: channel).withLockedValue { state in
            guard state.streams[channel] != nil else { return }
            if state.retained[channel] == nil {
                state.streams[channel] = nil
            } else {
                state.streams[channel]?.publications.removeAll()
            }
        }
        return eventLoop.makeSucceededVoidFuture()
    }

    public func retainChannel(_ channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        self.state(of: channel).withLockedValue { $0.retained[channel, default: 0] += 1 }
        return eventLoop.makeSucceededVoidFuture()
    }

    public func releaseChannel(_ channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let now = Date().timeIntervalSince1970
        self.state(of: channel).withLockedValue { state in
            Self.sweepExpired(&state, now: now)
            let remaining = state.retained[channel, default: 1] - 1
            guard remaining <= 0 else {
                state.retained[channel] = remaining
                return
            }
            state.retained[channel] = nil
            if let stream = state.streams[channel], !Self.holdsHistory(stream, now: now) {
                state.streams[channel] = nil
            }
        }
        return eventLoop.makeSucceededVoidFuture()
    }

    public func addPresence(
        channel: String,
        info: ClientInfo,
        announce: Bool,
        on eventLoop: any EventLoop
    )
        -> EventLoopFuture<Void>
    {
        self.state(of: channel).withLockedValue { state in
            state.presence[channel, default: [:]][info.client] = info
            if announce { state.deliver.call?(.join(channel: channel, info)) }
        }
        return eventLoop.makeSucceededVoidFuture()
    }

    public func removePresence(
        channel: String,
        info: ClientInfo,
        announce: Bool,
        on eventLoop: any EventLoop
    )
        -> EventLoopFuture<Void>
    {
        self.state(of: channel).withLockedValue { state in
            guard state.presence[channel]?.removeValue(forKey: info.client) != nil else { return }
            if state.presence[channel]?.isEmpty == true { state.presence[channel] = nil }
            if announce { state.deliver.call?(.leave(channel: channel, info)) }
        }
        return eventLoop.makeSucceededVoidFuture()
    }

    public func presence(channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<[String: ClientInfo]> {
        eventLoop.makeSucceededFuture(self.state(of: channel).withLockedValue { $0.presence[channel] ?? [:] })
    }

    public func stats(on eventLoop: any EventLoop) -> EventLoopFuture<RelayEngineStats> {
        let now = Date().timeIntervalSince1970
        var channels = 0
        var streams = 0
        for shard in self.shards {
            shard.withLockedValue { state in
                Self.sweepExpired(&state, now: now)
                var names = Set(state.streams.keys)
                names.formUnion(state.retained.keys)
                names.formUnion(state.presence.keys)
                channels += names.count
                streams += state.streams.count
            }
        }
        return eventLoop.makeSucceededFuture(RelayEngineStats(channels: channels, streams: streams))
    }
}
