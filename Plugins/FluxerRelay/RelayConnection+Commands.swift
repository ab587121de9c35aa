import DequeModule
import EthicalGateway
import Foundation
import Logging
import NIOCore
import NIOWebSocket

/// The commands that read or write a channel: `publish`, `presence`, `presence_stats`, `history`.
extension RelayConnection {
    func publish(id: UInt64, params: WireJSON) {
        guard let channel = params["channel"]?.stringValue, let data = params["data"] else {
            self.reply(
                id: id,
                error: RelayError.badRequest.with(message: "bad request: publish needs channel and data")
            )
            return
        }
        guard let resolved = self.resolve(channel, replyingTo: id) else { return }
        let subscribed = self.subscriptions[channel]?.subscribed == true
        guard
            self.permissions.mayPublish(channel, name: resolved.name, options: resolved.options, subscribed: subscribed)
        else {
            self.reply(id: id, error: .permissionDenied)
            return
        }
        self.relay.engine.publish(
            channel: channel,
            data: data,
            info: self.clientInfo(),
            tags: [:],
            history: Relay.historyPolicy(resolved.options),
            idempotencyKey: nil,
            idempotencyWindow: 0,
            on: self.hub.eventLoop
        ).whenComplete { [self] outcome in
            switch outcome {
            case .success: self.reply(id: id, method: "publish", result: .object([:]))
            case .failure(let error): self.reply(id: id, error: RelayError(engineFailure: error))
            }
        }
    }

    /// The command's `channel`; when it is missing or not a string, replies with a bad request
    /// naming `<method>.channel` and returns nil.
    func channelParameter(id: UInt64, params: WireJSON, method: String) -> String? {
        guard let channel = params["channel"]?.stringValue else {
            self.reply(
                id: id,
                error: RelayError.badRequest.with(message: "bad request: \(method).channel must be a string")
            )
            return nil
        }
        return channel
    }

    /// Resolves a channel for reading (presence, history): the connection must be allowed to subscribe.
    func readableChannel(id: UInt64, params: WireJSON, method: String) -> (String, NamespaceOptions)? {
        guard let channel = self.channelParameter(id: id, params: params, method: method) else { return nil }
        guard let resolved = self.resolve(channel, replyingTo: id) else { return nil }
        guard self.permissions.maySubscribe(channel, name: resolved.name, options: resolved.options) else {
            self.reply(id: id, error: .permissionDenied)
            return nil
        }
        return (channel, resolved.options)
    }

    func presence(id: UInt64, params: WireJSON, stats: Bool) {
        let method = stats ? "presence_stats" : "presence"
        guard let (channel, options) = self.readableChannel(id: id, params: params, method: method) else { return }
        guard options.presence else {
            self.reply(
                id: id,
                error: RelayError.notAvailable.with(message: "not available: presence is off in this namespace")
            )
            return
        }
        self.relay.presence(channel: channel, stats: stats, on: self.hub.eventLoop).whenComplete { [self] outcome in
            switch outcome {
            case .success(let result):
                self.reply(id: id, method: method, result: result)
            case .failure(let error):
                self.logger.warning(
                    "relay presence lookup failed",
                    metadata: ["channel": "\(channel)", "error": "\(error)"]
                )
                self.reply(id: id, error: RelayError(engineFailure: error))
            }
        }
    }

    func history(id: UInt64, params: WireJSON) {
        guard let (channel, options) = self.readableChannel(id: id, params: params, method: "history") else { return }
        guard options.historySize > 0 else {
            self.reply(
                id: id,
                error: RelayError.notAvailable.with(message: "not available: history is off in this namespace")
            )
            return
        }
        self.relay.history(params, channel: channel, options: options, on: self.hub.eventLoop).whenComplete {
            [self] outcome in
            switch outcome {
            case .success(.success(let result)): self.reply(id: id, method: "history", result: result)
            case .success(.failure(let error)): self.reply(id: id, error: error)
            case .failure(let error): self.reply(id: id, error: RelayError(engineFailure: error))
            }
        }
    }
}
