import DequeModule
import Foundation
import NIOConcurrencyHelpers
public import NIOCore

/// The embedded engine: streams and presence in this process's memory, under one lock. History
/// lives as long as the process; a restart starts every channel in a new epoch, so clients that
/// recover across it are told they missed publications (`recovered: false`).
public final class MemoryEngine: RelayEngine {
    private struct Stream {
        var epoch: String
        var top: UInt64 = 0
        var publications = Deque<RelayPublication>()
        var lastPublishedAt: Double = 0
    }

    private struct State {
        var streams: [String: Stream] = [:]
        var presence: [String: [String: ClientInfo]] = [:]
        /// `channel \0 key` to the first publication's outcome and when the key is forgotten.
        var idempotency: [String: (outcome: PublishOutcome, expiresAt: Double)] = [:]
        var lastIdempotencySweep: Double = 0
        var lastStreamSweep: Double = 0
        var deliver: (@Sendable (RelayEvent) -> Void)?
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    public func start(delivering handler: @escaping @Sendable (RelayEvent) -> Void) {
        self.state.withLockedValue { $0.deliver = handler }
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
        let outcome = self.state.withLockedValue { state -> PublishOutcome in
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
                position = StreamPosition(offset: stream.top, epoch: stream.epoch)
                state.streams[channel] = stream
            }
            let outcome = PublishOutcome(position: position, duplicate: false)
            if let idempotencyEntry {
                state.idempotency[idempotencyEntry] = (outcome, now + idempotencyWindow)
                Self.sweepIdempotency(&state, now: now)
            }
            Self.sweepStreams(&state, now: now)
            // Delivered under the lock, so every channel's events leave in offset order.
            state.deliver?(.publication(channel: channel, publication))
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

    /// Forgets the publications of streams idle for a day, once a minute at most.
    private static func sweepStreams(_ state: inout State, now: Double) {
        guard now - state.lastStreamSweep > 60 else { return }
        state.lastStreamSweep = now
        for (channel, stream) in state.streams where now - stream.lastPublishedAt > 86_400 {
            state.streams[channel]?.publications.removeAll()
        }
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
        let page = self.state.withLockedValue { state -> HistoryPage in
            var stream = state.streams[channel] ?? Stream(epoch: Self.newEpoch())
            Self.expire(&stream, ttl: history.ttlSeconds, now: now)
            state.streams[channel] = stream
            let position = StreamPosition(offset: stream.top, epoch: stream.epoch)
            var selected: [RelayPublication]
            var complete = true
            if let since {
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
        self.state.withLockedValue { _ = $0.streams[channel]?.publications.removeAll() }
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
        self.state.withLockedValue { state in
            state.presence[channel, default: [:]][info.client] = info
            if announce { state.deliver?(.join(channel: channel, info)) }
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
        self.state.withLockedValue { state in
            guard state.presence[channel]?.removeValue(forKey: info.client) != nil else { return }
            if state.presence[channel]?.isEmpty == true { state.presence[channel] = nil }
            if announce { state.deliver?(.leave(channel: channel, info)) }
        }
        return eventLoop.makeSucceededVoidFuture()
    }

    public func presence(channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<[String: ClientInfo]> {
        eventLoop.makeSucceededFuture(self.state.withLockedValue { $0.presence[channel] ?? [:] })
    }
}
