import DequeModule
import EthicalGateway
import Foundation
import Logging
import NIOCore
import NIOWebSocket
import WebSocketCore

/// Pings, disconnect codes, the close handshake and releasing what the connection holds.
extension RelayConnection {
    func startPings() {
        let interval = TimeAmount.seconds(Int64(self.configuration.pingIntervalSeconds))
        let timeout = TimeAmount.seconds(Int64(self.configuration.pongTimeoutSeconds))
        self.pingTask = self.hub.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) {
            [weak self] _ in
            guard let self, self.phase == .connected else { return }
            let sentAt = NIODeadline.now()
            self.send(self.format == .json ? Push.ping : ProtobufReplies.ping, publicationOf: nil, options: nil)
            // A uni-directional client cannot answer: the stream's writes tell whether it is there.
            guard !self.transport.isUnidirectional else { return }
            self.hub.eventLoop.scheduleTask(in: timeout) { [weak self] in
                guard let self, self.lastHeard < sentAt else { return }
                self.disconnect(.noPong)
            }
        }
    }

    /// Closes with a protocol disconnect code: a WebSocket client reads code and reason from
    /// the close frame, a uni-directional one from a `disconnect` push.
    func disconnect(_ reason: RelayDisconnect) {
        guard self.phase != .closed, self.transport.isOpen else { return }
        self.logger.debug(
            "relay client disconnected",
            metadata: ["client": "\(self.clientID)", "code": "\(reason.code)", "reason": "\(reason.reason)"]
        )
        self.tearDown()
        self.queue.removeAll()
        self.queuedBytes = 0
        self.transport.close(reason)
    }

    /// Releases everything the connection holds; safe to call more than once.
    func tearDown() {
        guard self.phase != .closed else { return }
        self.phase = .closed
        self.pingTask?.cancel()
        self.deadlineTask?.cancel()
        self.expiryTask?.cancel()
        for channel in Array(self.subscriptions.keys) { self.dropSubscription(channel) }
        self.hub.remove(self)
        if let user = self.admittedUser {
            self.relay.releaseConnection(of: user)
            self.admittedUser = nil
        }
    }
}
