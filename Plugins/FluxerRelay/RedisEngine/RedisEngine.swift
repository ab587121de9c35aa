import Crypto
import Foundation
import Logging
import NIOConcurrencyHelpers
public import NIOCore
import RESPClient

/// The engine shared by several gateway nodes: streams, history, idempotency keys, presence and
/// namespaces in Redis, publications delivered between nodes by Redis pub/sub.
///
/// - A publish is one Lua script (``RedisEngineScripts/publish``): it bumps the channel's
///   offset, appends to its history (capped at the namespace's size, expiring with its TTL),
///   records the idempotency key and publishes to the channel's pub/sub channel with the offset,
///   so every node delivers each channel in offset order.
/// - The epoch lives in Redis beside the offset and changes only when Redis lost that state, so
///   a client moving from one node to another recovers exactly what it missed.
/// - A node listens (`SSUBSCRIBE`, or `SUBSCRIBE` before Redis 7) only to channels it has
///   subscribers of. It compares each delivered offset with the last one; after a gap, or after
///   its pub/sub connection was lost, it unsubscribes the channel's subscribers with code 2500
///   so their SDKs subscribe again and recover from history.
/// - Channels are spread over several Redis servers (``ChannelSharding``).
///
/// While Redis is unreachable, calls fail at once with ``RelayEngineUnavailable`` (the client
/// gets a temporary error 100); connections stay open and recover once Redis is back.
public final class RedisEngine: RelayEngine {
    private let shards: [RedisShard]
    private let keys: RedisEngineKeys
    private let configuration: RelayEngineConfiguration
    private let eventLoopGroup: any EventLoopGroup
    /// The group's loops, for ``presenceLoop(for:)``.
    private let loops: [any EventLoop]
    private let logger: Logger
    private let deliver = NIOLockedValueBox(RelayEventHandler())
    private let presenceRefresh = NIOLockedValueBox<RepeatedTask?>(nil)
    /// The shared namespaces (on the first shard).
    let namespaceStorage: RedisNamespaceStorage

    /// Builds the engine; nothing connects before ``start(delivering:)``.
    ///
    /// - Parameter clientConfigurations: one per address, in the configured order.
    init(
        configuration: RelayEngineConfiguration,
        clientConfigurations: [RedisClientConfiguration],
        eventLoopGroup: any EventLoopGroup,
        logger: Logger
    ) {
        precondition(!clientConfigurations.isEmpty, "a Redis engine needs an address")
        self.configuration = configuration
        self.keys = RedisEngineKeys(prefix: configuration.prefix)
        self.eventLoopGroup = eventLoopGroup
        self.loops = Array(eventLoopGroup.makeIterator())
        self.logger = logger
        self.shards = clientConfigurations.enumerated().map { index, clientConfiguration in
            RedisShard(
                index: index,
                configuration: clientConfiguration,
                shardedPubSub: configuration.shardedPubSub,
                eventLoopGroup: eventLoopGroup,
                logger: logger
            )
        }
        self.namespaceStorage = RedisNamespaceStorage(shard: self.shards[0], keys: self.keys)
    }

    public var sharedNamespaces: (any SharedNamespaceStorage)? { self.namespaceStorage }

    private func shard(for channel: String) -> RedisShard {
        self.shards[ChannelSharding.shard(of: channel, count: self.shards.count)]
    }

    // MARK: Lifecycle

    public func start(delivering handler: @escaping @Sendable (RelayEvent) -> Void) {
        self.deliver.withLockedValue { $0.call = handler }
        for shard in self.shards {
            shard.start { [weak self] event in self?.handle(event, from: shard) }
        }
        // The namespaces' change channel lives on the first shard with its data.
        _ = self.shards[0].subscriber.subscribe([self.keys.namespacesChanged])
        let interval = TimeAmount.seconds(Int64(max(1, self.configuration.presenceTTLSeconds / 3)))
        let task = self.eventLoopGroup.next().scheduleRepeatedTask(initialDelay: interval, delay: interval) {
            [weak self] _ in
            self?.refreshPresence()
        }
        self.presenceRefresh.withLockedValue { $0 = task }
    }

    public func shutdown() async {
        self.presenceRefresh.withLockedValue {
            $0?.cancel()
            $0 = nil
        }
        for shard in self.shards { await shard.shutdown() }
    }

    public var health: RelayEngineHealth {
        let down = self.shards.filter { !$0.isReady }
        guard down.isEmpty else {
            return RelayEngineHealth(
                ready: false,
                detail: "Redis unavailable: " + down.map(\.endpoint).joined(separator: ", ")
            )
        }
        return .ready
    }

    /// Turns a failed Redis call into what the relay tells clients: temporary unavailability for
    /// connection trouble and for servers that cannot take writes yet; anything else as it is.
    private func engineError(_ error: any Error, shard: RedisShard) -> any Error {
        if error is RedisClientError {
            return RelayEngineUnavailable(reason: "the relay's Redis at \(shard.endpoint) is unavailable")
        }
        if let server = error as? RedisServerError {
            if ["LOADING", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN", "OOM", "CLUSTERDOWN"].contains(server.code) {
                return RelayEngineUnavailable(reason: "the relay's Redis at \(shard.endpoint) answered \(server.code)")
            }
            self.logger.error(
                "relay Redis command failed",
                metadata: ["redis": "\(shard.endpoint)", "error": "\(server.message)"]
            )
        }
        return error
    }

    // MARK: Pub/sub delivery

    private func handle(_ event: RedisSubscriberEvent, from shard: RedisShard) {
        switch event {
        case .message(let name, let payload):
            if name == self.keys.namespacesChanged {
                self.namespaceStorage.changed()
                return
            }
            guard name.hasPrefix(self.keys.pubSubPrefix) else { return }
            let channel = String(name.dropFirst(self.keys.pubSubPrefix.count))
            guard let message = RedisPubSubPayload(payload) else {
                self.logger.warning("relay: an unreadable message on Redis pub/sub", metadata: ["channel": "\(name)"])
                return
            }
            self.receive(message, channel: channel, shard: shard)
        case .subscribed(let afterLoss):
            // The namespaces may have changed while this node was not listening (or starting).
            if shard.index == 0 { self.namespaceStorage.changed() }
            guard afterLoss else { return }
            self.logger.warning(
                "relay: Redis pub/sub is back; subscribers recover what they may have missed",
                metadata: ["redis": "\(shard.endpoint)"]
            )
            // Messages may have been lost: every channel this node listens to recovers.
            let channels = shard.state.withLockedValue { state -> [String] in
                state.delivered.removeAll()
                return Array(state.interest.keys)
            }
            let deliver = self.deliver.withLockedValue { $0.call }
            for channel in channels { deliver?(.insufficientState(channel: channel)) }
            self.refreshPresence(of: shard)
        case .disconnected:
            self.logger.warning("relay: Redis pub/sub connection lost", metadata: ["redis": "\(shard.endpoint)"])
        }
    }

    /// Delivers one message; a publication out of sequence makes the channel's subscribers recover.
    private func receive(_ message: RedisPubSubPayload, channel: String, shard: RedisShard) {
        guard let deliver = self.deliver.withLockedValue({ $0.call }) else { return }
        switch message {
        case .publication(let offset, let epoch, let body):
            if offset > 0 {
                enum Verdict { case deliver, duplicate, gap }
                let verdict = shard.state.withLockedValue { state -> Verdict in
                    guard state.interest[channel] != nil else { return .duplicate }
                    let last = state.delivered[channel]
                    state.delivered[channel] = StreamPosition(offset: offset, epoch: epoch)
                    guard let last else { return .deliver }
                    if last.epoch != epoch { return .gap }
                    if offset <= last.offset { return .duplicate }
                    return offset == last.offset + 1 ? .deliver : .gap
                }
                switch verdict {
                case .duplicate: return
                case .gap:
                    self.logger.info(
                        "relay: a gap in a channel's Redis stream; its subscribers recover",
                        metadata: ["channel": "\(channel)", "offset": "\(offset)"]
                    )
                    deliver(.insufficientState(channel: channel))
                    return
                case .deliver: break
                }
            }
            deliver(
                .encodedPublication(
                    channel: channel,
                    offset: offset,
                    body: RedisPubSubPayload.withOffset(body, offset: offset)
                )
            )
        case .join(let body):
            if let info = ClientInfo(wire: body) { deliver(.join(channel: channel, info)) }
        case .leave(let body):
            if let info = ClientInfo(wire: body) { deliver(.leave(channel: channel, info)) }
        }
    }

    // MARK: Interest

    public func retainChannel(_ channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let shard = self.shard(for: channel)
        let promise = eventLoop.makePromise(of: Void.self)
        let (listening, first) = shard.state.withLockedValue { state -> (EventLoopFuture<Void>, Bool) in
            state.interest[channel, default: 0] += 1
            if let pending = state.listening[channel] { return (pending, false) }
            // The first loop with subscribers: listen, and let later loops wait for the same
            // confirmation (a loop that read history before it could miss a publication).
            state.delivered[channel] = nil
            state.listening[channel] = promise.futureResult
            return (promise.futureResult, true)
        }
        if first {
            shard.subscriber.subscribe([self.keys.pubSub(channel)]).cascade(to: promise)
        } else {
            promise.succeed()  // Unused: this loop waits for the first loop's subscription.
        }
        return listening.hop(to: eventLoop)
    }

    public func releaseChannel(_ channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let shard = self.shard(for: channel)
        let last = shard.state.withLockedValue { state -> Bool in
            let remaining = state.interest[channel, default: 1] - 1
            guard remaining <= 0 else {
                state.interest[channel] = remaining
                return false
            }
            state.interest[channel] = nil
            state.listening[channel] = nil
            state.delivered[channel] = nil
            return true
        }
        guard last else { return eventLoop.makeSucceededVoidFuture() }
        return shard.subscriber.unsubscribe([self.keys.pubSub(channel)]).hop(to: eventLoop)
    }

    // MARK: Streams

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
        let shard = self.shard(for: channel)
        let body = RelayPublication(offset: 0, data: data, info: info, tags: tags).wire.encoded
        let window = idempotencyKey == nil ? 0 : max(1, Int(idempotencyWindow * 1000))
        return self.run(
            RedisEngineScripts.publish,
            on: shard,
            keys: [
                RESPArgument(self.keys.meta(channel)), RESPArgument(self.keys.history(channel)),
                RESPArgument(self.keys.idempotency(channel, key: idempotencyKey.map(Self.digest) ?? "")),
            ],
            arguments: [
                RESPArgument(self.keys.pubSub(channel)), RESPArgument(body), RESPArgument(history.size),
                RESPArgument(max(1, history.ttlSeconds)), RESPArgument(self.configuration.streamMetaTTLSeconds),
                RESPArgument(MemoryEngine.newEpoch()), RESPArgument(window), RESPArgument(shard.publishCommand),
            ],
            eventLoop: eventLoop
        ).flatMapThrowing { reply in
            guard let values = reply.array, values.count == 2, let duplicate = values[0].int64,
                let position = values[1].string.flatMap(Self.position)
            else {
                throw RedisEngineReplyError(script: "publish", reply: "\(reply)")
            }
            return PublishOutcome(position: position.offset > 0 ? position : nil, duplicate: duplicate == 1)
        }
    }

    /// Runs `script` on `shard`, failures turned into what clients are told (``engineError(_:shard:)``).
    private func run(
        _ script: RedisScript,
        on shard: RedisShard,
        keys: [RESPArgument],
        arguments: [RESPArgument],
        eventLoop: any EventLoop
    ) -> EventLoopFuture<RESPValue> {
        shard.client.evalSHA(script, keys: keys, arguments: arguments, on: eventLoop).flatMapErrorThrowing { error in
            throw self.engineError(error, shard: shard)
        }
    }

    /// The SHA-256 of an idempotency key, in hex: a fixed-length key part, so no (channel, key)
    /// pair can spell another's Redis key, and a long key costs Redis 64 bytes.
    static func digest(_ key: String) -> String {
        SHA256.hash(data: Array(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// `"<offset>:<epoch>"` as a position.
    private static func position(_ text: String) -> StreamPosition? {
        guard let colon = text.firstIndex(of: ":"), let offset = UInt64(text[..<colon]) else { return nil }
        return StreamPosition(offset: offset, epoch: String(text[text.index(after: colon)...]))
    }

    public func history(
        channel: String,
        since: StreamPosition?,
        limit: Int?,
        reverse: Bool,
        history: HistoryPolicy,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<HistoryPage> {
        let shard = self.shard(for: channel)
        // A position starts only for channels this node has subscribers of (they may recover
        // from it); reading any other channel's history creates nothing in Redis.
        let interested = shard.state.withLockedValue { $0.interest[channel] != nil }
        // Stream ids are computed here: Lua's numbers lose integers past 2^53.
        // After the largest offset there is nothing: "+" reads no entry (and `complete` is false).
        var start = "-"
        var end = "+"
        if let since, reverse {
            // Newest first from just before `since` (entries are `<offset>-1`; the largest
            // sequence number covers the whole offset).
            end = since.offset > 0 ? "\(since.offset - 1)-18446744073709551615" : "0-0"
        } else if let since {
            start = since.offset < UInt64.max ? "\(since.offset + 1)-0" : "+"
        }
        return self.run(
            RedisEngineScripts.history,
            on: shard,
            keys: [RESPArgument(self.keys.meta(channel)), RESPArgument(self.keys.history(channel))],
            arguments: [
                RESPArgument(interested ? MemoryEngine.newEpoch() : ""),
                RESPArgument(self.configuration.streamMetaTTLSeconds), RESPArgument(start),
                RESPArgument(limit.map { max(0, $0) } ?? -1), RESPArgument(reverse ? "1" : "0"),
                RESPArgument(end),
            ],
            eventLoop: eventLoop
        ).flatMapThrowing { reply in
            guard let values = reply.array, values.count >= 3, values.count % 2 == 1,
                let top = values[0].int64.map({ UInt64(max(0, $0)) }), let epoch = values[1].string,
                let firstKept = values[2].int64
            else {
                throw RedisEngineReplyError(script: "history", reply: "\(reply)")
            }
            var publications: [RelayPublication] = []
            publications.reserveCapacity(values.count / 2 - 1)
            var index = 3
            while index + 1 < values.count {
                if let offset = values[index].int64, let body = values[index + 1].buffer,
                    let publication = RelayPublication(offset: UInt64(max(0, offset)), encoded: body)
                {
                    publications.append(publication)
                }
                index += 2
            }
            let position = StreamPosition(offset: top, epoch: epoch)
            var complete = true
            if let since, reverse {
                complete = since.epoch == epoch
            } else if let since {
                if since.epoch != epoch || since.offset > top {
                    complete = false
                } else if since.offset < top {
                    // Complete only when the first publication after `since` is still kept.
                    complete = UInt64(max(0, firstKept)) == since.offset + 1
                }
            }
            return HistoryPage(publications: publications, position: position, complete: complete)
        }
    }

    public func removeHistory(channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let shard = self.shard(for: channel)
        return shard.client.send("DEL", [RESPArgument(self.keys.history(channel))], on: eventLoop)
            .flatMapErrorThrowing { error in throw self.engineError(error, shard: shard) }
            .map { _ in () }
    }

    public func stats(on eventLoop: any EventLoop) -> EventLoopFuture<RelayEngineStats> {
        var channels = 0
        var streams = 0
        for shard in self.shards {
            shard.state.withLockedValue { state in
                channels += state.interest.count
                streams += state.delivered.count
            }
        }
        return eventLoop.makeSucceededFuture(RelayEngineStats(channels: channels, streams: streams))
    }

    // MARK: Presence

    /// The loop that sends every presence command of `channel` (adds, removes, refreshes), so
    /// they reach Redis in the order this node made them: a refresh can never re-add an entry
    /// after its removal.
    private func presenceLoop(for channel: String) -> any EventLoop {
        self.loops[Int(ChannelSharding.fnv1a(channel) % UInt64(self.loops.count))]
    }

    public func addPresence(
        channel: String,
        info: ClientInfo,
        announce: Bool,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<Void> {
        let shard = self.shard(for: channel)
        let loop = self.presenceLoop(for: channel)
        return loop.flatSubmit {
            shard.state.withLockedValue { $0.localPresence[channel, default: [:]][info.client] = info }
            return self.run(
                RedisEngineScripts.addPresence,
                on: shard,
                keys: self.presenceKeys(channel),
                arguments: [
                    RESPArgument(info.client), RESPArgument(Self.presenceUserKey(info.user)),
                    RESPArgument(info.wire.encoded),
                    RESPArgument(self.configuration.presenceTTLSeconds), RESPArgument(self.keys.pubSub(channel)),
                    RESPArgument(announce ? "1" : "0"), RESPArgument(shard.publishCommand),
                ],
                eventLoop: loop
            ).map { _ in () }
        }.hop(to: eventLoop)
    }

    public func removePresence(
        channel: String,
        info: ClientInfo,
        announce: Bool,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<Void> {
        let shard = self.shard(for: channel)
        let loop = self.presenceLoop(for: channel)
        return loop.flatSubmit {
            shard.state.withLockedValue { state in
                state.localPresence[channel]?[info.client] = nil
                if state.localPresence[channel]?.isEmpty == true { state.localPresence[channel] = nil }
            }
            return self.run(
                RedisEngineScripts.removePresence,
                on: shard,
                keys: self.presenceKeys(channel),
                arguments: [
                    RESPArgument(info.client), RESPArgument(self.keys.pubSub(channel)),
                    RESPArgument(announce ? "1" : "0"), RESPArgument(shard.publishCommand),
                    RESPArgument(info.wire.encoded),
                ],
                eventLoop: loop
            ).map { _ in () }
        }.hop(to: eventLoop)
    }

    public func presence(channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<[String: ClientInfo]> {
        let shard = self.shard(for: channel)
        return self.run(
            RedisEngineScripts.presence,
            on: shard,
            keys: self.presenceKeys(channel),
            arguments: [],
            eventLoop: eventLoop
        ).flatMapThrowing { reply in
            guard let values = reply.array, values.count % 2 == 0 else {
                throw RedisEngineReplyError(script: "presence", reply: "\(reply)")
            }
            var clients: [String: ClientInfo] = [:]
            var index = 0
            while index + 1 < values.count {
                // Each entry is `user \n info JSON`.
                if let client = values[index].string, var entry = values[index + 1].buffer,
                    let newline = entry.readableBytesView.firstIndex(of: UInt8(ascii: "\n"))
                {
                    entry.moveReaderIndex(to: newline + 1)
                    if let info = ClientInfo(wire: entry) { clients[client] = info }
                }
                index += 2
            }
            return clients
        }
    }

    public func presenceStats(channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<PresenceStats> {
        let shard = self.shard(for: channel)
        return self.run(
            RedisEngineScripts.presenceStats,
            on: shard,
            keys: self.presenceKeys(channel),
            arguments: [],
            eventLoop: eventLoop
        ).flatMapThrowing { reply in
            guard let values = reply.array, values.count == 2, let clients = values[0].int64,
                let users = values[1].int64
            else {
                throw RedisEngineReplyError(script: "presence_stats", reply: "\(reply)")
            }
            return PresenceStats(clients: Int(clients), users: Int(users))
        }
    }

    /// The user as the presence scripts keep it: before a newline in the entry (`user \n info`)
    /// and as a hash field counting the user's clients. `%` and newlines are escaped, so a
    /// subject holding a newline cannot shift the entry or be counted as another user.
    static func presenceUserKey(_ user: String) -> String {
        guard user.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "\n") }) else { return user }
        var escaped = String.UnicodeScalarView()
        for scalar in user.unicodeScalars {
            switch scalar {
            case "%": escaped.append(contentsOf: "%25".unicodeScalars)
            case "\n": escaped.append(contentsOf: "%0A".unicodeScalars)
            default: escaped.append(scalar)
            }
        }
        return String(escaped)
    }

    private func presenceKeys(_ channel: String) -> [RESPArgument] {
        [
            RESPArgument(self.keys.presenceData(channel)), RESPArgument(self.keys.presenceExpiry(channel)),
            RESPArgument(self.keys.presenceUsers(channel)),
        ]
    }

    /// Refreshes every presence entry of this node's clients, so they outlive the TTL while the
    /// clients are here (and vanish within it when this node is gone).
    private func refreshPresence() {
        for shard in self.shards { self.refreshPresence(of: shard) }
    }

    /// One script call per channel, sent from the channel's presence loop with the entries as
    /// they are there and then (see ``presenceLoop(for:)``).
    private func refreshPresence(of shard: RedisShard) {
        let channels = shard.state.withLockedValue { Array($0.localPresence.keys) }
        for channel in channels {
            let loop = self.presenceLoop(for: channel)
            loop.execute {
                guard let clients = shard.state.withLockedValue({ $0.localPresence[channel] }), !clients.isEmpty
                else { return }
                var arguments = [RESPArgument(self.configuration.presenceTTLSeconds)]
                arguments.reserveCapacity(1 + clients.count * 3)
                for info in clients.values {
                    arguments.append(RESPArgument(info.client))
                    arguments.append(RESPArgument(Self.presenceUserKey(info.user)))
                    arguments.append(RESPArgument(info.wire.encoded))
                }
                self.run(
                    RedisEngineScripts.refreshPresence,
                    on: shard,
                    keys: self.presenceKeys(channel),
                    arguments: arguments,
                    eventLoop: loop
                ).whenFailure { error in
                    self.logger.debug(
                        "relay presence refresh failed; the next one retries",
                        metadata: ["channel": "\(channel)", "error": "\(error)"]
                    )
                }
            }
        }
    }
}

/// Redis answered a script with something the engine did not expect (another program writing
/// under the same prefix, or a version mismatch between nodes).
struct RedisEngineReplyError: Error, CustomStringConvertible {
    let script: String
    let reply: String

    var description: String { "unexpected reply to the \(self.script) script: \(self.reply.prefix(200))" }
}

extension ClientInfo {
    /// Reads `{"user":…,"client":…,"conn_info":…}` as written by ``wire``.
    init?(wire bytes: ByteBuffer) {
        guard let object = try? WireJSON.parse(bytes.readableBytesView) else { return nil }
        self.init(wire: object)
    }

    init?(wire object: WireJSON) {
        guard let user = object["user"]?.stringValue, let client = object["client"]?.stringValue else { return nil }
        self.init(user: user, client: client, connInfo: object["conn_info"])
    }
}

extension RelayPublication {
    /// Reads a publication as the publish script stored it (``wire`` without its offset).
    init?(offset: UInt64, encoded bytes: ByteBuffer) {
        guard let object = try? WireJSON.parse(bytes.readableBytesView), let data = object["data"] else {
            return nil
        }
        var tags: [String: String] = [:]
        if case .object(let members)? = object["tags"] {
            for (key, value) in members { tags[key] = value.stringValue }
        }
        self.init(offset: offset, data: data, info: object["info"].flatMap { ClientInfo(wire: $0) }, tags: tags)
    }
}
