import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOWebSocket

/// A WebSocket client of the relay's protocol on SwiftNIO, for tests that need control a
/// library client does not give: reading paused on purpose (a slow consumer), raw frames,
/// the exact close code.
///
/// Messages are JSON objects, one per line of a text frame; replies are matched by `id`, and
/// everything else (pushes, pings) waits in order for ``nextPush(timeout:)``.
public final class RelayTestClient: @unchecked Sendable {
    /// A message the server sent, or the end of the connection.
    enum Event: Sendable {
        case text(String)
        case closed(code: Int, reason: String)
    }

    private let channel: any Channel
    private let events: EventQueue
    private var replies: [Int: [String: Any]] = [:]
    private var pushes: [[String: Any]] = []
    private var nextID = 1
    /// The close code and reason once the server closed (or the connection dropped: 1006).
    public private(set) var closure: (code: Int, reason: String)?
    /// The handshake's HTTP status line, e.g. `HTTP/1.1 101 Switching Protocols`.
    public let handshakeStatus: String

    private init(channel: any Channel, events: EventQueue, handshakeStatus: String) {
        self.channel = channel
        self.events = events
        self.handshakeStatus = handshakeStatus
    }

    /// The clients' own event loops: the gateways under test run on NIO's singleton group, and a
    /// busy client must not slow them down (nor they it).
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    /// Opens a WebSocket to `127.0.0.1:port` (TLS without certificate checks when `tls`).
    /// `receiveBufferBytes` shrinks the socket's receive buffer, so a paused reader fills up quickly.
    ///
    /// - Throws: ``RelayTestClientError`` when the server does not switch protocols.
    public static func connect(
        port: Int,
        path: String = "/relay/connection/websocket",
        tls: Bool = true,
        headers: [(String, String)] = [],
        receiveBufferBytes: Int? = nil
    ) async throws -> RelayTestClient {
        let events = EventQueue()
        let handshake = HandshakeHandler(path: path, port: port, headers: headers, events: events)
        let sslContext: NIOSSLContext? =
            tls
            ? try {
                var configuration = TLSConfiguration.makeClientConfiguration()
                configuration.certificateVerification = .none
                configuration.applicationProtocols = ["http/1.1"]
                return try NIOSSLContext(configuration: configuration)
            }() : nil
        var bootstrap = ClientBootstrap(group: Self.group)
        if let receiveBufferBytes {
            // Before connecting, so the window the client announces stays small.
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: .init(receiveBufferBytes))
        }
        let connecting =
            bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: sslContext, serverHostname: nil)
                        )
                    }
                    try channel.pipeline.syncOperations.addHandler(handshake)
                }
            }
            .connect(host: "127.0.0.1", port: port)
        let channel: Channel
        do {
            channel = try await connecting.get()
        } catch {
            // The handler never saw the connection: its promise must still be completed.
            handshake.result.fail(error)
            throw error
        }
        let status = try await handshake.result.futureResult.get()
        guard status.contains(" 101 ") else {
            channel.close(promise: nil)
            throw RelayTestClientError(message: "the server did not switch protocols: \(status)")
        }
        return RelayTestClient(channel: channel, events: events, handshakeStatus: status)
    }

    /// Sends one text frame (masked, as clients must).
    public func send(_ text: String) {
        let frame = WebSocketFrame(
            fin: true,
            opcode: .text,
            maskKey: .random(),
            data: ByteBuffer(string: text)
        )
        self.channel.writeAndFlush(frame, promise: nil)
    }

    /// Sends a command and waits for its reply; pushes that arrive meanwhile are kept.
    ///
    /// - Returns: the whole reply (with `error` or the method's result under its name).
    public func call(
        _ method: String,
        _ params: [String: Any] = [:],
        timeout: Duration = .seconds(10)
    )
        async throws -> [String: Any]
    {
        let id = self.nextID
        self.nextID += 1
        let command: [String: Any] = ["id": id, method: params]
        self.send(String(decoding: try JSONSerialization.data(withJSONObject: command), as: UTF8.self))
        let deadline = ContinuousClock.now + timeout
        while true {
            if let reply = self.replies.removeValue(forKey: id) { return reply }
            try await self.receive(until: deadline, waitingFor: "the reply to \(method)")
        }
    }

    /// Waits for the reply with `id` to a command sent with ``send(_:)``.
    public func reply(to id: Int, timeout: Duration = .seconds(10)) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let reply = self.replies.removeValue(forKey: id) { return reply }
            try await self.receive(until: deadline, waitingFor: "the reply \(id)")
        }
    }

    /// The next message that is not a reply (a push, or `{}` for a ping).
    public func nextPush(timeout: Duration = .seconds(10)) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        while self.pushes.isEmpty {
            try await self.receive(until: deadline, waitingFor: "a push")
        }
        return self.pushes.removeFirst()
    }

    /// Pushes received so far without waiting.
    public func takePushes() -> [[String: Any]] {
        defer { self.pushes = [] }
        return self.pushes
    }

    /// Waits until the server closes the connection; returns the close code and reason.
    public func waitForClose(timeout: Duration = .seconds(10)) async throws -> (code: Int, reason: String) {
        let deadline = ContinuousClock.now + timeout
        while self.closure == nil {
            try await self.receive(until: deadline, waitingFor: "the connection to close")
        }
        return self.closure!
    }

    /// Stops or resumes reading from the socket (a reader that stopped reading is a slow consumer).
    public func setReading(_ enabled: Bool) async throws {
        try await self.channel.setOption(.autoRead, value: enabled).get()
        if enabled { self.channel.read() }
    }

    public func close() {
        self.channel.close(promise: nil)
    }

    private func receive(until deadline: ContinuousClock.Instant, waitingFor what: String) async throws {
        if let closure = self.closure {
            throw RelayTestClientError(message: "closed (\(closure.code) \(closure.reason)) while waiting for \(what)")
        }
        let event = await self.events.next(until: deadline)
        switch event {
        case .text(let text)?:
            for line in text.split(separator: "\n") {
                guard let message = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    continue
                }
                if let id = message["id"] as? Int, id > 0 {
                    self.replies[id] = message
                } else {
                    self.pushes.append(message)
                }
            }
        case .closed(let code, let reason)?:
            self.closure = (code, reason)
        case nil:
            throw RelayTestClientError(message: "timed out waiting for \(what)")
        }
    }
}

public struct RelayTestClientError: Error, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { self.message }
}

/// Sends the opening handshake, reads the response head, then installs the frame handlers.
private final class HandshakeHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let path: String
    let port: Int
    let headers: [(String, String)]
    let events: EventQueue
    let result: EventLoopPromise<String>
    private var received = ByteBuffer()

    init(path: String, port: Int, headers: [(String, String)], events: EventQueue) {
        self.path = path
        self.port = port
        self.headers = headers
        self.events = events
        self.result = RelayTestClient.group.any().makePromise()
    }

    func channelActive(context: ChannelHandlerContext) {
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        var request = "GET \(self.path) HTTP/1.1\r\nHost: 127.0.0.1:\(self.port)\r\nUpgrade: websocket\r\n"
        request += "Connection: Upgrade\r\nSec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        for (name, value) in self.headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        self.received.writeBuffer(&buffer)
        let view = self.received.readableBytesView
        guard let end = view.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
        let head = String(decoding: view[view.startIndex..<end.lowerBound], as: UTF8.self)
        let status = head.split(separator: "\r\n").first.map(String.init) ?? head
        self.received.moveReaderIndex(to: end.upperBound)
        let leftover = self.received
        do {
            let sync = context.pipeline.syncOperations
            try sync.addHandler(FrameCollector(events: self.events), position: .after(self))
            try sync.addHandler(WebSocketFrameEncoder(), position: .after(self))
            try sync.addHandler(
                ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 24)),
                position: .after(self)
            )
        } catch {
            self.result.fail(error)
            context.close(promise: nil)
            return
        }
        self.result.succeed(status)
        if leftover.readableBytes > 0 { context.fireChannelRead(self.wrapInboundOut(leftover)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.result.fail(RelayTestClientError(message: "the connection closed during the handshake"))
        self.events.push(.closed(code: 1006, reason: "closed during the handshake"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.result.fail(error)
        context.close(promise: nil)
    }
}

/// Turns text frames into messages and the close frame into the close event.
private final class FrameCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let events: EventQueue
    private var closed = false

    init(events: EventQueue) {
        self.events = events
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            // Parsed by the test's task, not here on the event loop.
            self.events.push(.text(String(buffer: frame.unmaskedData)))
        case .connectionClose:
            var data = frame.unmaskedData
            let code = data.readInteger(as: UInt16.self).map(Int.init) ?? 1005
            let reason = data.readString(length: data.readableBytes) ?? ""
            self.finish(code: code, reason: reason)
            context.close(promise: nil)
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.finish(code: 1006, reason: "connection dropped")
        context.fireChannelInactive()
    }

    private func finish(code: Int, reason: String) {
        guard !self.closed else { return }
        self.closed = true
        self.events.push(.closed(code: code, reason: reason))
    }
}

/// Events in arrival order, with one waiter at a time and a deadline for it.
final class EventQueue: @unchecked Sendable {
    private let lock = NIOLock()
    private var queued: [RelayTestClient.Event] = []
    private var waiter: (id: Int, continuation: CheckedContinuation<RelayTestClient.Event?, Never>)?
    private var nextWaiter = 0

    func push(_ event: RelayTestClient.Event) {
        let waiting: CheckedContinuation<RelayTestClient.Event?, Never>? = self.lock.withLock {
            if let waiter = self.waiter {
                self.waiter = nil
                return waiter.continuation
            }
            self.queued.append(event)
            return nil
        }
        waiting?.resume(returning: event)
    }

    /// The next event, or `nil` when none arrives before `deadline`.
    func next(until deadline: ContinuousClock.Instant) async -> RelayTestClient.Event? {
        await withCheckedContinuation { continuation in
            let id: Int? = self.lock.withLock {
                if !self.queued.isEmpty {
                    continuation.resume(returning: self.queued.removeFirst())
                    return nil
                }
                self.nextWaiter += 1
                self.waiter = (self.nextWaiter, continuation)
                return self.nextWaiter
            }
            guard let id else { return }
            Task {
                try? await Task.sleep(until: deadline)
                let expired: CheckedContinuation<RelayTestClient.Event?, Never>? = self.lock.withLock {
                    guard let waiter = self.waiter, waiter.id == id else { return nil }
                    self.waiter = nil
                    return waiter.continuation
                }
                expired?.resume(returning: nil)
            }
        }
    }
}
