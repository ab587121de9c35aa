/// The life of one HTTP/1.1 connection (or one HTTP/2 stream) as ``GatewayHTTPHandler`` serves
/// it: a pure value that takes each event (a request part, a response part written, the client's
/// half-close, a shutdown request, a parse error, a read) and answers with what the handler must
/// do. The handler keeps the data of the exchange (its head, route, body receiver); this keeps
/// every decision about the exchange's and the connection's lifecycle, in one place where each
/// transition can be tested on its own.
///
/// ```
/// idle --head--> active(request: receiving, response: notStarted) --end--> active(request: ended)
///   ^                 |  body over the limit, refused request: request discarding
///   |                 |  response head, body: response headSent; an upgrade asked for early: upgradePending
///   |                 v
///   +--- response end and request end, keep-alive ---+   (pipelined parts that arrive meanwhile are
///                                                        buffered, and reads held, until then)
/// active --response end, `Connection: close` / shutdown / refused upload--> closing (lingering close)
/// active --upgrade--> upgraded
/// ```
///
/// The design follows NIO's `HTTPServerPipelineHandler` (requests are answered one at a time, in
/// order; parts of the next request wait while a response is being written) and Hummingbird's
/// `HTTPConnectionStateHandler` (a shutdown request closes an idle connection at once and a busy
/// one after its response).
struct HTTPConnectionStateMachine {
    /// How far the request has been received.
    enum RequestProgress: Equatable {
        /// Body parts go to the backend (or wait for it).
        case receiving
        /// The request was refused or its body went over the limit: the rest is read and dropped.
        case discarding
        /// The request's end has arrived.
        case ended
    }

    /// How far the response has been written.
    enum ResponseProgress: Equatable {
        case notStarted
        /// The head is written; `suppressBody` for HEAD, 204, 304 and interim responses.
        case headSent(suppressBody: Bool)
        /// The backend asked to switch protocols before the request's end had arrived.
        case upgradePending
        case ended
    }

    /// What happens to the connection once the response is written.
    enum AfterResponse: Equatable {
        case keepAlive
        /// Close, reading and dropping what the client still sends first (``LingeringCloseHandler``).
        case lingeringClose
        /// Close once the response is written: the gateway is shutting down.
        case close
    }

    /// Why reads are held while the request is being received.
    struct ReadHolds: OptionSet, Equatable {
        let rawValue: UInt8
        /// A filter of the route is suspended.
        static let filterSuspended = ReadHolds(rawValue: 1)
        /// The backend paused the request body.
        static let bodyPaused = ReadHolds(rawValue: 2)
    }

    /// One request and its response.
    struct Exchange: Equatable {
        var request = RequestProgress.receiving
        var response = ResponseProgress.notStarted
        var after: AfterResponse
        var holds: ReadHolds = []
        /// The client sent `Expect: 100-continue` with a body and waits for the interim response.
        var awaitsContinue = false
    }

    enum State: Equatable {
        /// Waiting for the next request head.
        case idle
        case active(Exchange)
        /// The connection's last response is written or being written; nothing more is served.
        case closing
        /// The connection was handed over to another protocol.
        case upgraded
    }

    private(set) var state = State.idle
    /// The client closed its sending side: what it sent is answered, then the connection closes.
    private(set) var inputClosed = false
    /// The gateway is shutting down: the current exchange is the connection's last.
    private(set) var quiescing = false
    let isHTTP2: Bool

    init(isHTTP2: Bool) {
        self.isHTTP2 = isHTTP2
    }

    /// The exchange in progress, if any.
    var exchange: Exchange? {
        if case .active(let exchange) = self.state { return exchange }
        return nil
    }

    // MARK: Request side

    enum HeadAction: Equatable {
        /// Start serving this request.
        case start
        /// A pipelined request behind a response in progress: keep it for later.
        case buffer
        /// The connection is closing or was handed over: the request is not served.
        case drop
        /// A head while a request is still being received (a decoder bug): close.
        case close
    }

    mutating func headReceived(keepAlive: Bool) -> HeadAction {
        switch self.state {
        case .idle:
            let after: AfterResponse =
                self.quiescing ? .close : (keepAlive || self.isHTTP2 ? .keepAlive : .lingeringClose)
            self.state = .active(Exchange(after: after))
            return .start
        case .active(let exchange):
            return exchange.request == .ended ? .buffer : .close
        case .closing, .upgraded:
            return .drop
        }
    }

    enum BodyAction: Equatable {
        /// To the backend, or kept until it is ready.
        case deliver
        case discard
        /// Part of a pipelined request.
        case buffer
    }

    mutating func bodyReceived() -> BodyAction {
        guard case .active(let exchange) = self.state else { return .discard }
        switch exchange.request {
        case .receiving: return .deliver
        case .discarding: return .discard
        case .ended: return .buffer
        }
    }

    enum EndAction: Equatable {
        /// Tell the backend the request is complete (unless the body was being discarded).
        case deliver(discarded: Bool)
        /// The response was already complete: the exchange is over; `then` says what follows.
        case finish(discarded: Bool, then: NextStep)
        /// Send the `101` the backend asked for and hand the connection over.
        case upgrade
        case buffer
        case drop
    }

    /// What follows an exchange that is over.
    enum NextStep: Equatable {
        /// Serve the next (possibly already buffered) request.
        case nextRequest
        /// Close once the last response is on the wire.
        case close
    }

    mutating func endReceived() -> EndAction {
        guard case .active(var exchange) = self.state else { return .drop }
        let discarded = exchange.request == .discarding
        switch exchange.request {
        case .ended:
            return .buffer
        case .receiving, .discarding:
            exchange.request = .ended
            // No body is left to pause; a suspended filter still holds reads until it resumes.
            exchange.holds.remove(.bodyPaused)
            switch exchange.response {
            case .upgradePending:
                self.state = .upgraded
                return .upgrade
            case .ended:
                return .finish(discarded: discarded, then: self.exchangeOver())
            case .notStarted, .headSent:
                self.state = .active(exchange)
                return .deliver(discarded: discarded)
            }
        }
    }

    /// Stops passing the body on: a refused request, a body over the limit, a broken body.
    /// Returns whether the request was still being received.
    @discardableResult
    mutating func discardBody(closeAfterResponse: Bool) -> Bool {
        guard case .active(var exchange) = self.state else { return false }
        if closeAfterResponse { exchange.after = self.isHTTP2 ? .close : .lingeringClose }
        let wasReceiving = exchange.request == .receiving
        if wasReceiving { exchange.request = .discarding }
        exchange.holds = []
        self.state = .active(exchange)
        return wasReceiving
    }

    /// The exchange's response ends the connection (an oversized head, a request the codec
    /// refuses with a close).
    mutating func closeAfterResponse() {
        guard case .active(var exchange) = self.state else { return }
        if exchange.after == .keepAlive { exchange.after = self.isHTTP2 ? .close : .lingeringClose }
        self.state = .active(exchange)
    }

    /// The client expects `100 Continue` before it sends the body.
    mutating func expectContinue() {
        guard case .active(var exchange) = self.state else { return }
        exchange.awaitsContinue = true
        self.state = .active(exchange)
    }

    /// The backend is ready to read the body: whether the interim `100 Continue` is due now.
    mutating func backendReady() -> Bool {
        guard case .active(var exchange) = self.state else { return false }
        defer { self.state = .active(exchange) }
        let due = exchange.awaitsContinue && exchange.response == .notStarted && exchange.request == .receiving
        exchange.awaitsContinue = false
        return due
    }

    /// Reads are held (or released) for `reason`.
    mutating func setHold(_ reason: ReadHolds, _ held: Bool) {
        guard case .active(var exchange) = self.state else { return }
        if held { exchange.holds.insert(reason) } else { exchange.holds.remove(reason) }
        self.state = .active(exchange)
    }

    /// Whether a read the channel asks for must wait: while a filter or the backend holds the
    /// request, and while a response is being written to a complete request (pipelined requests
    /// wait in the socket, not in memory).
    var holdsReads: Bool { self.holdsReads(nextRequestWaiting: true) }

    /// ``holdsReads``, told whether bytes of a next request already wait in the decoder: while
    /// a response is being written to a complete request, reads are held only once they do.
    /// Until then one more read costs nothing (the decoder keeps what it brings until the
    /// exchange is over, and holds reads from then on), and the socket keeps its read interest:
    /// holding every read cost two `epoll_ctl` calls per keep-alive request, as NIO drops the
    /// interest after a read with no read pending and adds it back on the next `read()`.
    func holdsReads(nextRequestWaiting: Bool) -> Bool {
        guard case .active(let exchange) = self.state else { return false }
        if !exchange.holds.isEmpty { return true }
        if exchange.request == .ended, exchange.response != .ended { return nextRequestWaiting }
        return false
    }

    // MARK: Response side

    enum ResponseHeadAction: Equatable {
        /// Write the head; `closeConnection` says to mark it `Connection: close`.
        case write(closeConnection: Bool)
        /// No head is due (one was written, or the exchange is gone).
        case ignore
    }

    /// A response head is due. `closeDelimited`: its body ends with the connection's close (an
    /// HTTP/1.0 response without a length), so the connection cannot stay open after it.
    mutating func responseHeadWritten(
        suppressBody: Bool,
        expectsBody: Bool,
        closeDelimited: Bool = false
    ) -> ResponseHeadAction {
        guard case .active(var exchange) = self.state, exchange.response == .notStarted else { return .ignore }
        if closeDelimited, exchange.after == .keepAlive { exchange.after = .lingeringClose }
        // A refused request's unread body could be of any size; close instead of reading it.
        if !self.isHTTP2, expectsBody, exchange.request == .discarding, exchange.after == .keepAlive {
            exchange.after = .lingeringClose
        }
        if self.quiescing, exchange.after == .keepAlive { exchange.after = .close }
        exchange.response = .headSent(suppressBody: suppressBody)
        self.state = .active(exchange)
        return .write(closeConnection: !self.isHTTP2 && exchange.after != .keepAlive)
    }

    enum ResponseEndAction: Equatable {
        /// Write the end; the request is still arriving and its end finishes the exchange.
        case awaitRequestEnd
        /// Write the end; the exchange is over; `then` says what follows.
        case finish(NextStep)
        /// Write the end, then close (`lingering`: half-close and drain what the client sends).
        case closeAfterWrite(lingering: Bool)
        case ignore
    }

    mutating func responseEnded() -> ResponseEndAction {
        guard case .active(var exchange) = self.state, case .headSent = exchange.response else { return .ignore }
        exchange.response = .ended
        switch exchange.after {
        case .lingeringClose, .close:
            self.state = .closing
            return .closeAfterWrite(lingering: exchange.after == .lingeringClose && !self.isHTTP2)
        case .keepAlive:
            guard exchange.request == .ended else {
                self.state = .active(exchange)
                return .awaitRequestEnd
            }
            return .finish(self.exchangeOver())
        }
    }

    /// Whether the response may take a body part now.
    var acceptsResponseBody: Bool {
        guard case .active(let exchange) = self.state, case .headSent(let suppress) = exchange.response else {
            return false
        }
        return !suppress
    }

    /// Whether a response head was written and its end was not.
    var responseInProgress: Bool {
        guard case .active(let exchange) = self.state, case .headSent = exchange.response else { return false }
        return true
    }

    enum UpgradeAction: Equatable {
        /// Switch now: the request is complete.
        case upgradeNow
        /// Switch when the request's end has passed the decoder.
        case upgradeAfterRequestEnd
        case refuse
    }

    /// The backend asks to switch protocols.
    ///
    /// - Parameter requestIsTunnel: the request's body is the new protocol's data (an HTTP/2
    ///   extended CONNECT, whose stream stays open): switch at once. Other HTTP/2 requests
    ///   cannot switch.
    mutating func upgradeRequested(requestIsTunnel: Bool = false) -> UpgradeAction {
        guard case .active(var exchange) = self.state, exchange.response == .notStarted else {
            return .refuse
        }
        if self.isHTTP2 {
            guard requestIsTunnel, exchange.request == .receiving else { return .refuse }
            self.state = .upgraded
            return .upgradeNow
        }
        if exchange.request == .ended {
            self.state = .upgraded
            return .upgradeNow
        }
        exchange.response = .upgradePending
        self.state = .active(exchange)
        return .upgradeAfterRequestEnd
    }

    // MARK: Connection events

    enum ConnectionAction: Equatable {
        case none
        /// Close once the last response is on the wire.
        case closeAfterLastWrite
        /// Close now.
        case close
    }

    /// The client closed its sending side (after every request it sent has been delivered).
    mutating func inputClosedReceived() -> ConnectionAction {
        self.inputClosed = true
        switch self.state {
        case .idle: return .closeAfterLastWrite
        case .active, .closing, .upgraded: return .none
        }
    }

    /// The gateway is shutting down (`ChannelShouldQuiesceEvent`).
    mutating func quiesce() -> ConnectionAction {
        self.quiescing = true
        switch self.state {
        case .idle:
            self.state = .closing
            return .closeAfterLastWrite
        case .active(var exchange):
            if exchange.after == .keepAlive { exchange.after = .close }
            self.state = .active(exchange)
            return .none
        case .closing, .upgraded:
            return .none
        }
    }

    enum ParseErrorAction: Equatable {
        /// Answer 400 and close: nothing after the error can be trusted.
        case answerAndClose
        /// The response is under way: too late for a 400, close.
        case close
        /// Behind a response in progress: keep the error for when it is the next request.
        case buffer
        /// The connection is already closing.
        case ignore
    }

    mutating func parseErrorReceived() -> ParseErrorAction {
        switch self.state {
        case .idle:
            self.state = .closing
            return .answerAndClose
        case .active(var exchange):
            if exchange.request == .ended, exchange.response != .ended { return .buffer }
            if exchange.request == .receiving { exchange.request = .discarding }
            exchange.holds = []
            exchange.after = .lingeringClose
            self.state = .active(exchange)
            return exchange.response == .notStarted ? .answerAndClose : .close
        case .closing, .upgraded:
            return .ignore
        }
    }

    /// The channel went away or the handler was removed: nothing more happens.
    mutating func connectionClosed() {
        self.state = .closing
    }

    /// The exchange is over: the connection waits for the next request, or closes.
    private mutating func exchangeOver() -> NextStep {
        if self.inputClosed || self.quiescing {
            self.state = .closing
            return .close
        }
        self.state = .idle
        return .nextRequest
    }
}
