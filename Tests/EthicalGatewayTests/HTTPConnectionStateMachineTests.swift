import Testing

@testable import EthicalGateway

/// ``HTTPConnectionStateMachine`` alone, one transition at a time: no channel, no handler.
@Suite("HTTP connection state machine")
struct HTTPConnectionStateMachineTests {
    typealias Machine = HTTPConnectionStateMachine

    /// A machine with a keep-alive exchange whose request is complete and whose response has not started.
    private func requestComplete() -> Machine {
        var machine = Machine(isHTTP2: false)
        _ = machine.headReceived(keepAlive: true)
        _ = machine.endReceived()
        return machine
    }

    @Test("a keep-alive exchange goes idle -> active -> idle")
    func keepAliveExchange() {
        var machine = Machine(isHTTP2: false)
        #expect(machine.state == .idle)
        #expect(machine.headReceived(keepAlive: true) == .start)
        #expect(machine.exchange == .init(request: .receiving, response: .notStarted, after: .keepAlive))
        #expect(machine.bodyReceived() == .deliver)
        #expect(machine.endReceived() == .deliver(discarded: false))
        #expect(machine.holdsReads, "a complete request holds reads until its response is written")
        #expect(
            !machine.holdsReads(nextRequestWaiting: false),
            "unless nothing of a next request has arrived: one more read keeps the socket's read interest"
        )
        #expect(machine.responseHeadWritten(suppressBody: false, expectsBody: false) == .write(closeConnection: false))
        #expect(machine.acceptsResponseBody)
        #expect(machine.responseEnded() == .finish(.nextRequest))
        #expect(machine.state == .idle)
        #expect(!machine.holdsReads)
    }

    @Test("a response that ends before the request waits for the request's end")
    func responseBeforeRequestEnd() {
        var machine = Machine(isHTTP2: false)
        _ = machine.headReceived(keepAlive: true)
        _ = machine.responseHeadWritten(suppressBody: false, expectsBody: false)
        #expect(machine.responseEnded() == .awaitRequestEnd)
        #expect(!machine.holdsReads, "the rest of the request is read")
        #expect(machine.endReceived() == .finish(discarded: false, then: .nextRequest))
        #expect(machine.state == .idle)
    }

    @Test("parts of a pipelined request are buffered while a response is in progress")
    func pipelinedRequestBuffered() {
        var machine = self.requestComplete()
        #expect(machine.headReceived(keepAlive: true) == .buffer)
        #expect(machine.bodyReceived() == .buffer)
        #expect(machine.endReceived() == .buffer)
        _ = machine.responseHeadWritten(suppressBody: false, expectsBody: false)
        #expect(machine.responseEnded() == .finish(.nextRequest))
        #expect(machine.headReceived(keepAlive: true) == .start, "the buffered request is next")
    }

    @Test("a head while a request is still arriving closes the connection")
    func secondHeadMidRequest() {
        var machine = Machine(isHTTP2: false)
        _ = machine.headReceived(keepAlive: true)
        #expect(machine.headReceived(keepAlive: true) == .close)
    }

    @Test("Connection: close ends in a lingering close; what follows is dropped")
    func connectionClose() {
        var machine = Machine(isHTTP2: false)
        #expect(machine.headReceived(keepAlive: false) == .start)
        _ = machine.endReceived()
        #expect(machine.responseHeadWritten(suppressBody: false, expectsBody: false) == .write(closeConnection: true))
        #expect(machine.responseEnded() == .closeAfterWrite(lingering: true))
        #expect(machine.state == .closing)
        #expect(machine.headReceived(keepAlive: true) == .drop)
        #expect(machine.bodyReceived() == .discard)
        #expect(machine.endReceived() == .drop)
    }

    @Test("a refused request with an unread body closes after its answer")
    func refusedUpload() {
        var machine = Machine(isHTTP2: false)
        _ = machine.headReceived(keepAlive: true)
        #expect(machine.discardBody(closeAfterResponse: false) == true)
        #expect(machine.bodyReceived() == .discard)
        #expect(machine.responseHeadWritten(suppressBody: false, expectsBody: true) == .write(closeConnection: true))
        #expect(machine.responseEnded() == .closeAfterWrite(lingering: true))
    }

    @Test("a refused request without a body keeps the connection")
    func refusedWithoutBody() {
        var machine = Machine(isHTTP2: false)
        _ = machine.headReceived(keepAlive: true)
        machine.discardBody(closeAfterResponse: false)
        #expect(machine.responseHeadWritten(suppressBody: false, expectsBody: false) == .write(closeConnection: false))
        #expect(machine.responseEnded() == .awaitRequestEnd)
        #expect(machine.endReceived() == .finish(discarded: true, then: .nextRequest))
    }

    @Test("a HEAD response takes no body")
    func suppressedBody() {
        var machine = self.requestComplete()
        _ = machine.responseHeadWritten(suppressBody: true, expectsBody: false)
        #expect(machine.responseInProgress)
        #expect(!machine.acceptsResponseBody)
        #expect(machine.responseHeadWritten(suppressBody: false, expectsBody: false) == .ignore, "one head only")
    }

    @Test("reads are held while a filter is suspended or the body is paused")
    func readHolds() {
        var machine = Machine(isHTTP2: false)
        _ = machine.headReceived(keepAlive: true)
        #expect(!machine.holdsReads)
        machine.setHold(.filterSuspended, true)
        machine.setHold(.bodyPaused, true)
        #expect(machine.holdsReads)
        #expect(machine.holdsReads(nextRequestWaiting: false), "holds apply whatever is waiting")
        machine.setHold(.filterSuspended, false)
        #expect(machine.holdsReads)
        machine.setHold(.bodyPaused, false)
        #expect(!machine.holdsReads)
        machine.setHold(.filterSuspended, true)
        machine.setHold(.bodyPaused, true)
        _ = machine.endReceived()
        #expect(
            machine.holdsReads(nextRequestWaiting: false),
            "the request's end lifts a paused body's hold, not a suspended filter's"
        )
        machine.setHold(.filterSuspended, false)
        #expect(!machine.holdsReads(nextRequestWaiting: false))
    }

    @Test("100-continue is due once, when the backend is ready and the body has not started")
    func expectContinue() {
        var machine = Machine(isHTTP2: false)
        _ = machine.headReceived(keepAlive: true)
        machine.expectContinue()
        #expect(machine.backendReady() == true)
        #expect(machine.backendReady() == false)
        var answered = Machine(isHTTP2: false)
        _ = answered.headReceived(keepAlive: true)
        answered.expectContinue()
        _ = answered.responseHeadWritten(suppressBody: false, expectsBody: true)
        #expect(answered.backendReady() == false, "no 100 after a final response")
    }

    @Test("a half-close when idle closes; during an exchange it closes after it")
    func halfClose() {
        var idle = Machine(isHTTP2: false)
        #expect(idle.inputClosedReceived() == .closeAfterLastWrite)
        var busy = self.requestComplete()
        #expect(busy.inputClosedReceived() == .none)
        _ = busy.responseHeadWritten(suppressBody: false, expectsBody: false)
        #expect(busy.responseEnded() == .finish(.close))
        #expect(busy.state == .closing)
    }

    @Test("a shutdown closes an idle connection at once and a busy one after its response")
    func quiesce() {
        var idle = Machine(isHTTP2: false)
        #expect(idle.quiesce() == .closeAfterLastWrite)
        #expect(idle.headReceived(keepAlive: true) == .drop)
        var busy = self.requestComplete()
        #expect(busy.quiesce() == .none)
        #expect(busy.responseHeadWritten(suppressBody: false, expectsBody: false) == .write(closeConnection: true))
        #expect(busy.responseEnded() == .closeAfterWrite(lingering: false))
        var answered = Machine(isHTTP2: false)
        _ = answered.headReceived(keepAlive: true)
        _ = answered.responseHeadWritten(suppressBody: false, expectsBody: false)
        #expect(answered.responseEnded() == .awaitRequestEnd)
        #expect(answered.quiesce() == .none)
        #expect(answered.endReceived() == .finish(discarded: false, then: .close))
    }

    @Test("parse errors: 400 when nothing was answered, a close mid-response, later behind a response")
    func parseErrors() {
        var idle = Machine(isHTTP2: false)
        #expect(idle.parseErrorReceived() == .answerAndClose)
        #expect(idle.state == .closing)
        #expect(idle.parseErrorReceived() == .ignore)
        var midBody = Machine(isHTTP2: false)
        _ = midBody.headReceived(keepAlive: true)
        #expect(midBody.parseErrorReceived() == .answerAndClose)
        #expect(midBody.exchange?.request == .discarding)
        #expect(midBody.responseHeadWritten(suppressBody: false, expectsBody: true) == .write(closeConnection: true))
        var midResponse = Machine(isHTTP2: false)
        _ = midResponse.headReceived(keepAlive: true)
        _ = midResponse.responseHeadWritten(suppressBody: false, expectsBody: false)
        #expect(midResponse.parseErrorReceived() == .close)
        var behind = self.requestComplete()
        #expect(behind.parseErrorReceived() == .buffer)
    }

    @Test("an upgrade switches at once, or after the request's end")
    func upgrade() {
        var complete = self.requestComplete()
        #expect(complete.upgradeRequested() == .upgradeNow)
        #expect(complete.state == .upgraded)
        #expect(complete.headReceived(keepAlive: true) == .drop)
        var early = Machine(isHTTP2: false)
        _ = early.headReceived(keepAlive: true)
        #expect(early.upgradeRequested() == .upgradeAfterRequestEnd)
        #expect(early.responseHeadWritten(suppressBody: false, expectsBody: false) == .ignore)
        #expect(early.endReceived() == .upgrade)
        #expect(early.state == .upgraded)
        var answered = self.requestComplete()
        _ = answered.responseHeadWritten(suppressBody: false, expectsBody: false)
        #expect(answered.upgradeRequested() == .refuse)
    }

    @Test("an HTTP/2 extended CONNECT switches at once, its stream still open; no other HTTP/2 request switches")
    func http2ExtendedConnect() {
        var tunnel = Machine(isHTTP2: true)
        #expect(tunnel.headReceived(keepAlive: true) == .start)
        #expect(tunnel.upgradeRequested(requestIsTunnel: true) == .upgradeNow)
        #expect(tunnel.state == .upgraded)
        #expect(tunnel.bodyReceived() == .discard)
        var ended = Machine(isHTTP2: true)
        _ = ended.headReceived(keepAlive: true)
        _ = ended.endReceived()
        #expect(ended.upgradeRequested(requestIsTunnel: true) == .refuse)
        var answered = Machine(isHTTP2: true)
        _ = answered.headReceived(keepAlive: true)
        _ = answered.responseHeadWritten(suppressBody: false, expectsBody: false)
        #expect(answered.upgradeRequested(requestIsTunnel: true) == .refuse)
    }

    @Test("an HTTP/2 stream without extended CONNECT never upgrades, never marks Connection: close, and just ends")
    func http2Stream() {
        var machine = Machine(isHTTP2: true)
        #expect(machine.headReceived(keepAlive: false) == .start)
        #expect(machine.upgradeRequested() == .refuse)
        machine.discardBody(closeAfterResponse: true)
        #expect(machine.responseHeadWritten(suppressBody: false, expectsBody: true) == .write(closeConnection: false))
        #expect(machine.responseEnded() == .closeAfterWrite(lingering: false))
    }
}
