import Foundation
import Testing

@testable import AtomRPC

/// `ReactorWait` replaces `zmq_poll` in every reactor, so its edge cases are the transport's:
/// a message must never sit unnoticed while the reactor sleeps, and a wake-up must never be lost.
/// Real libzmq sockets over inproc, each used only from the test's thread.
@Suite("Reactor wait")
struct ReactorWaitTests {
    /// A connected DEALER pair: `left` sends to `right`. One message is exchanged first, so
    /// that the connection's own notifications (which a wait reports as possible work) are over.
    private func pair(_ context: ZMQContext) throws -> (left: ZMQSocket, right: ZMQSocket) {
        let endpoint = "inproc://reactor-wait-\(UUID().uuidString)"
        let right = try ZMQSocket(.dealer, context: context)
        try right.bind(endpoint)
        let left = try ZMQSocket(.dealer, context: context)
        try left.connect(endpoint)
        try left.send([[0]])
        let deadline = ContinuousClock.now + .seconds(5)
        while try right.receive() == nil {
            guard ContinuousClock.now < deadline else { throw ZMQError(errno: 0, operation: "the pair never connected") }
            usleep(1_000)
        }
        return (left, right)
    }

    /// Waits until a wait reports nothing for 20 ms: the sockets are settled.
    private func settle(_ waiter: ReactorWait, _ socket: ZMQSocket) throws {
        while waiter.wait(timeoutMs: 20).socket {
            while try socket.receive() != nil {}
        }
    }

    @Test("a message that arrives while the reactor sleeps wakes it, and is then received")
    func messageWakes() throws {
        let context = ZMQContext()
        let (left, right) = try pair(context)
        let waiter = try ReactorWait(socket: right, wake: WakeSignal())
        #expect(try right.receive() == nil)
        try left.send([[1, 2, 3]])
        let start = ContinuousClock.now
        let readiness = waiter.wait(timeoutMs: 5_000)
        #expect(readiness.socket)
        #expect(ContinuousClock.now - start < .seconds(2))
        #expect(try right.receive() == [[1, 2, 3]])
    }

    /// The classic ZMQ_FD trap: a send processes libzmq's pending commands, including the one
    /// that says a message arrived, and so clears the descriptor's notification. A wait that
    /// only watched the descriptor would sleep with the message waiting.
    @Test("a message whose notification a send consumed is still seen at once")
    func notificationConsumedBySend() throws {
        let context = ZMQContext()
        let (left, right) = try pair(context)
        let waiter = try ReactorWait(socket: right, wake: WakeSignal())
        for round in 0..<50 {
            try left.send([[UInt8(round)]])
            usleep(2_000)  // let the message reach right's queue and its command be signalled
            try right.send([[0xFF]])  // processes (and clears) right's pending commands
            let start = ContinuousClock.now
            let readiness = waiter.wait(timeoutMs: 3_000)
            #expect(readiness.socket, "round \(round)")
            #expect(ContinuousClock.now - start < .milliseconds(1_500), "round \(round)")
            #expect(try right.receive() == [[UInt8(round)]])
            while try left.receive() != nil {}
        }
    }

    @Test("a wake-up signal from another thread ends a wait, and is cleared by it")
    func wakeFromAnotherThread() throws {
        let context = ZMQContext()
        let (_, right) = try pair(context)
        let wake = WakeSignal()
        let waiter = try ReactorWait(socket: right, wake: wake)
        try settle(waiter, right)
        let signaller = Thread { usleep(50_000); wake.signal(); wake.signal() }
        signaller.start()
        let start = ContinuousClock.now
        let readiness = waiter.wait(timeoutMs: 5_000)
        #expect(readiness.wake && !readiness.socket)
        #expect(ContinuousClock.now - start < .seconds(2))
        // Both signals were cleared by one drain: the next wait times out.
        let again = waiter.wait(timeoutMs: 50)
        #expect(!again.wake && !again.socket)
    }

    @Test("with nothing to report a wait lasts its timeout; timeout 0 does not block")
    func timeouts() throws {
        let context = ZMQContext()
        let (_, right) = try pair(context)
        let waiter = try ReactorWait(socket: right, wake: WakeSignal())
        try settle(waiter, right)
        var start = ContinuousClock.now
        let readiness = waiter.wait(timeoutMs: 100)
        let waited = ContinuousClock.now - start
        #expect(!readiness.socket && !readiness.wake)
        #expect(waited >= .milliseconds(90))
        start = ContinuousClock.now
        _ = waiter.wait(timeoutMs: 0)
        #expect(ContinuousClock.now - start < .milliseconds(50))
    }

    // Polls (timeout 0) of a socket found idle and unused since skip ZMQ_EVENTS and only ask
    // epoll whether libzmq's descriptor has news: these cases must still see everything.

    @Test("an idle reactor's polls see a message that arrives between them")
    func pollsSeeNewMessage() throws {
        let context = ZMQContext()
        let (left, right) = try pair(context)
        let waiter = try ReactorWait(socket: right, wake: WakeSignal())
        for round in 0..<20 {
            try settle(waiter, right)
            #expect(!waiter.wait(timeoutMs: 0).socket)  // found idle: the next polls take the short path
            #expect(!waiter.wait(timeoutMs: 0).socket)
            try left.send([[UInt8(round)]])
            let deadline = ContinuousClock.now + .seconds(2)
            var seen = false
            while !seen && ContinuousClock.now < deadline {
                seen = waiter.wait(timeoutMs: 0).socket
            }
            #expect(seen, "round \(round)")
            #expect(try right.receive() == [[UInt8(round)]])
        }
    }

    /// The ZMQ_FD trap again, for polls: after the socket was found idle, a send clears the
    /// notification of a message that arrived meanwhile. The next poll must not trust the
    /// descriptor alone.
    @Test("a poll after a send that consumed the notification still sees the message at once")
    func pollAfterSendSeesMessage() throws {
        let context = ZMQContext()
        let (left, right) = try pair(context)
        let waiter = try ReactorWait(socket: right, wake: WakeSignal())
        try settle(waiter, right)
        for round in 0..<50 {
            #expect(!waiter.wait(timeoutMs: 0).socket, "round \(round)")
            try left.send([[UInt8(round)]])
            usleep(2_000)  // let the message reach right's queue and its command be signalled
            try right.send([[0xFF]])  // processes (and clears) right's pending commands
            #expect(waiter.wait(timeoutMs: 0).socket, "round \(round)")
            #expect(try right.receive() == [[UInt8(round)]])
            while try left.receive() != nil {}
            while try right.receive() != nil {}
        }
    }

    @Test("a poll reports a wake-up signal and clears it")
    func pollSeesWake() throws {
        let context = ZMQContext()
        let (_, right) = try pair(context)
        let wake = WakeSignal()
        let waiter = try ReactorWait(socket: right, wake: wake)
        try settle(waiter, right)
        #expect(!waiter.wait(timeoutMs: 0).wake)
        wake.signal()
        let polled = waiter.wait(timeoutMs: 0)
        #expect(polled.wake && !polled.socket)
        #expect(!waiter.wait(timeoutMs: 0).wake)
    }
}
