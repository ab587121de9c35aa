import DequeModule
import EthicalGateway
import Foundation
import Logging
import NIOCore
import NIOWebSocket

/// Subscriptions: `subscribe` with recovery from history, `unsubscribe`, presence entries, and
/// the pushes the loop's hub delivers (held while a subscribe is prepared, deduplicated by offset).
extension RelayConnection {
    func clientInfo() -> ClientInfo {
        ClientInfo(user: self.user, client: self.clientID, connInfo: self.connInfo)
    }

    func subscribe(id: UInt64, params: WireJSON) {
        guard let channel = self.channelParameter(id: id, params: params, method: "subscribe") else { return }
        if params["token"]?.stringValue.map({ !$0.isEmpty }) == true {
            self.reply(
                id: id,
                error: RelayError.badRequest.with(
                    message: "bad request: subscription tokens are not supported; the connection token grants channels"
                )
            )
            return
        }
        guard let resolved = self.resolve(channel, replyingTo: id) else { return }
        guard self.subscriptions[channel] == nil else {
            self.reply(id: id, error: .alreadySubscribed)
            return
        }
        guard self.subscriptions.count < self.configuration.maxSubscriptionsPerConnection else {
            self.reply(
                id: id,
                error: RelayError.limitExceeded.with(
                    message: "limit exceeded: at most \(self.configuration.maxSubscriptionsPerConnection) subscriptions"
                )
            )
            return
        }
        let options = resolved.options
        guard self.permissions.maySubscribe(channel, name: resolved.name, options: options) else {
            self.reply(id: id, error: .permissionDenied)
            return
        }
        let wantsRecovery = params["recover"]?.boolValue == true
        let since: StreamPosition? =
            wantsRecovery
            ? StreamPosition(
                offset: params["offset"]?.unsignedValue ?? 0,
                epoch: params["epoch"]?.stringValue ?? ""
            ) : nil
        let attempt = self.register(channel, options: options, serverSide: false)
        self.prepare(channel, options: options, since: since).whenComplete { [self] outcome in
            guard self.phase == .connected else { return }
            guard self.subscriptions[channel]?.attempt == attempt else {
                // Unsubscribed (and maybe subscribed again) while this one was being prepared.
                self.reply(
                    id: id,
                    error: RelayError.badRequest.with(
                        message: "bad request: unsubscribed before the subscribe completed"
                    )
                )
                return
            }
            switch outcome {
            case .success(let prepared):
                self.reply(id: id, method: "subscribe", result: .object(prepared.result))
                self.activate(channel, lastOffset: prepared.lastOffset)
            case .failure(let error):
                self.dropSubscription(channel)
                self.reply(id: id, error: RelayError(engineFailure: error))
            }
        }
    }

    /// What a subscription starts from: the subscribe result (`SubscribeResult` in the
    /// protocol's field names) and the offset of the last publication it covers.
    struct PreparedSubscription {
        var result: [String: WireJSON]
        var lastOffset: UInt64
    }

    /// Registers a subscription that holds the pushes arriving before ``activate(_:lastOffset:)``,
    /// so nothing published while its history is read is lost.
    /// - Returns: the attempt that tells it apart from a later subscription to the same channel.
    func register(_ channel: String, options: NamespaceOptions, serverSide: Bool) -> UInt64 {
        self.subscribeAttempts += 1
        let attempt = self.subscribeAttempts
        self.subscriptions[channel] = Subscription(options: options, attempt: attempt, serverSide: serverSide)
        return attempt
    }

    /// The result of subscribing to a registered `channel`: its stream position when the
    /// namespace keeps history, and with `since` (a recovery the namespace allows) the
    /// publications after it, `recovered` telling whether they are all of them.
    func prepare(
        _ channel: String,
        options: NamespaceOptions,
        since requested: StreamPosition?
    ) -> EventLoopFuture<PreparedSubscription> {
        let since = options.recovery ? requested : nil
        guard let subscription = self.subscriptions[channel] else {
            preconditionFailure("prepare(\(channel)) without register")
        }
        let listening = self.hub.subscribe(self, subscription, to: channel)
        let eventLoop = self.hub.eventLoop
        let engine = self.relay.engine
        // The position is read once the node listens to the channel, so nothing published in
        // between is missed; what arrives meanwhile is held and deduplicated by offset.
        return listening.flatMap { _ -> EventLoopFuture<HistoryPage?> in
            options.historySize > 0
                ? engine.history(
                    channel: channel,
                    since: since,
                    limit: since == nil ? 0 : nil,
                    reverse: false,
                    history: Relay.historyPolicy(options),
                    on: eventLoop
                ).map { Optional($0) }
                : eventLoop.makeSucceededFuture(nil)
        }.map { page in
            var result: [String: WireJSON] = [:]
            guard let page else { return PreparedSubscription(result: result, lastOffset: 0) }
            result["recoverable"] = .bool(options.recovery)
            result["positioned"] = .bool(true)
            result["epoch"] = .string(page.position.epoch)
            result["offset"] = .number(String(page.position.offset))
            if since != nil {
                result["was_recovering"] = .bool(true)
                result["recovered"] = .bool(page.complete)
                if page.complete {
                    result["publications"] = .array(page.publications.map(\.wire))
                }
            }
            return PreparedSubscription(result: result, lastOffset: page.position.offset)
        }
    }

    /// The subscription's result was sent: it enters presence and gets the pushes it held,
    /// then every later one.
    func activate(_ channel: String, lastOffset: UInt64) {
        guard let subscription = self.subscriptions[channel] else { return }
        let options = subscription.options
        if options.presence {
            // Not awaited: a shared engine keeps this node's entries and writes them again
            // on its next refresh (a third of the presence TTL), so a failed write heals.
            self.relay.engine.addPresence(
                channel: channel,
                info: self.clientInfo(),
                announce: options.joinLeave,
                on: self.hub.eventLoop
            ).whenFailure { [logger = self.logger] error in
                logger.warning(
                    "relay presence entry not written; the engine's refresh retries it",
                    metadata: ["channel": "\(channel)", "error": "\(error)"]
                )
            }
        }
        subscription.lastOffset = lastOffset
        subscription.subscribed = true
        let held = subscription.held
        subscription.held = []
        for entry in held {
            self.deliver(
                to: subscription,
                channel: channel,
                offset: entry.offset,
                push: entry.push,
                isPublication: entry.isPublication
            )
        }
    }

    /// The channel's name and namespace options, or `nil` after replying with why not.
    func resolve(_ channel: String, replyingTo id: UInt64) -> (name: ChannelName, options: NamespaceOptions)? {
        switch self.relay.resolve(channel) {
        case .success(let resolved): return resolved
        case .failure(let error):
            self.reply(id: id, error: error)
            return nil
        }
    }

    func unsubscribe(id: UInt64, params: WireJSON) {
        guard let channel = self.channelParameter(id: id, params: params, method: "unsubscribe") else { return }
        self.dropSubscription(channel)
        self.reply(id: id, method: "unsubscribe", result: .object([:]))
    }

    /// Forgets a subscription: no more pushes, out of presence (with a leave when configured).
    func dropSubscription(_ channel: String) {
        guard let subscription = self.subscriptions.removeValue(forKey: channel) else { return }
        subscription.ended = true
        self.hub.unsubscribe(self, from: channel)
        if subscription.options.presence {
            _ = self.relay.engine.removePresence(
                channel: channel,
                info: self.clientInfo(),
                announce: subscription.options.joinLeave,
                on: self.hub.eventLoop
            )
        }
    }

    /// Called by the loop's hub for every event on a channel this connection subscribed to,
    /// with the connection's `subscription` to it.
    func deliver(
        to subscription: Subscription,
        channel: String,
        offset: UInt64,
        push: RelayPushFrames,
        isPublication: Bool
    ) {
        guard self.phase != .closed, !subscription.ended else { return }
        guard subscription.subscribed else {
            subscription.held.append((offset, push, isPublication))
            return
        }
        if offset > 0 {
            guard offset > subscription.lastOffset else { return }  // Already sent in the subscribe reply.
            subscription.lastOffset = offset
        }
        guard let frame = push.frame(for: self.format) else { return }
        self.hub.counters.pushesOut += 1
        self.send(frame, publicationOf: isPublication ? channel : nil, options: subscription.options)
    }

    /// Subscribes the connection to `channel` from the server's side (the server API's
    /// `subscribe`): a `subscribe` push with the channel's position, then its pushes. Nothing
    /// happens when the connection is not connected, is subscribed already, or is at
    /// `maxSubscriptionsPerConnection`.
    /// - Returns: whether a subscription was started.
    @discardableResult
    func subscribeByServer(_ channel: String, options: NamespaceOptions) -> Bool {
        guard self.phase == .connected, self.subscriptions[channel] == nil,
            self.subscriptions.count < self.configuration.maxSubscriptionsPerConnection
        else { return false }
        let attempt = self.register(channel, options: options, serverSide: true)
        self.prepare(channel, options: options, since: nil).whenComplete { [self] outcome in
            guard self.phase == .connected, self.subscriptions[channel]?.attempt == attempt else { return }
            switch outcome {
            case .success(let prepared):
                self.send(self.subscribePush(channel: channel, prepared.result), publicationOf: nil, options: nil)
                self.activate(channel, lastOffset: prepared.lastOffset)
            case .failure(let error):
                self.logger.warning(
                    "relay server-side subscribe failed",
                    metadata: ["channel": "\(channel)", "error": "\(error)"]
                )
                self.dropSubscription(channel)
            }
        }
        return true
    }

    /// Ends the subscription to `channel` from the server's side with an `unsubscribe` push:
    /// code 2000 by default; 2500 (insufficient state) makes the client subscribe again and recover.
    /// A server-side subscription cannot be subscribed again by its client: where it would lose
    /// state (2500), the connection is closed with 3010 instead, and the client reconnects and
    /// recovers it through the connect's `subs`.
    func unsubscribeByServer(_ channel: String, _ reason: RelayUnsubscribe = .server) {
        guard let subscription = self.subscriptions[channel] else { return }
        if subscription.serverSide && reason.code == RelayUnsubscribe.insufficientState.code {
            self.disconnect(.insufficientState)
            return
        }
        self.dropSubscription(channel)
        self.send(self.unsubscribePush(channel: channel, reason), publicationOf: nil, options: nil)
    }

    /// The channels this connection is subscribed to.
    var subscribedChannels: [String] { Array(self.subscriptions.keys) }
}
