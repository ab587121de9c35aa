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
            self.hub.eventLoop.scheduleTask(in: timeout) { [weak self] in
                guard let self, self.lastHeard < sentAt else { return }
                self.disconnect(.noPong)
            }
        }
    }

    /// Closes with a protocol disconnect code: the client reads code and reason from the close frame.
    func disconnect(_ reason: RelayDisconnect) {
        guard self.phase != .closed else { return }
        self.logger.debug(
            "relay client disconnected",
            metadata: ["client": "\(self.clientID)", "code": "\(reason.code)", "reason": "\(reason.reason)"]
        )
        self.closeWebSocket(code: WebSocketErrorCode(codeNumber: Int(reason.code)), reason: reason.reason)
    }

    /// How long the socket stays open for the close frame to be written. A peer that stopped
    /// reading never takes it (the frame waits behind what it did not read), and would hold its
    /// socket until the gateway's idle timeout. A reader that is merely slow still gets the code.
    static let closeFrameTimeout = TimeAmount.seconds(1)

    /// Sends a close frame and closes the socket once it is written, or after
    /// ``closeFrameTimeout`` if it cannot be, or at once if writing fails.
    func closeWebSocket(code: WebSocketErrorCode, reason: String) {
        guard self.phase != .closed, let context = self.context else { return }
        self.tearDown()
        self.queue.removeAll()
        self.queuedBytes = 0
        let frame = WebSocketCloseCode.frame(code: code, reason: reason, allocator: context.channel.allocator)
        let channel = context.channel
        self.countedAsClosing = true
        self.hub.counters.closingConnections += 1
        self.closeTimeoutTask = context.eventLoop.scheduleTask(in: Self.closeFrameTimeout) {
            channel.close(promise: nil)
        }
        context.writeAndFlush(self.wrapOutboundOut(frame)).whenComplete { _ in
            channel.close(promise: nil)
        }
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
