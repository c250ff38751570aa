import Foundation
import Testing

@testable import AtomRPC

/// The two queues on a reactor's path of every call: the hand-over of received calls to the
/// task that starts their handlers, and the deadlines of calls in flight.
@Suite("Reactor queues")
struct ReactorQueuesTests {
    private static func call(_ id: UInt64) -> IncomingCall {
        let handler = RPCMethodHandler(name: "Echo", isServerStreaming: false) { payload, _, _ in payload }
        let context = RPCContext(service: "test.Echo", method: "Echo", deadline: nil, metadata: [], instanceID: "test")
        return IncomingCall(id: id, clientCallID: id, handler: handler, payload: [UInt8(id & 0xFF)], context: context, control: CallControl())
    }

    @Test("calls queued before the consumer asks arrive in order, in one batch")
    func queuedFirst() async {
        let queue = IncomingCallQueue()
        queue.yield([Self.call(1), Self.call(2)])
        queue.yield([Self.call(3)])
        let batch = await queue.next()
        #expect(batch?.map(\.id) == [1, 2, 3])
    }

    @Test("a waiting consumer is handed the next batch; finish ends it after what is pending")
    func waitingConsumer() async {
        let queue = IncomingCallQueue()
        let consumer = Task { () -> [[UInt64]] in
            var batches: [[UInt64]] = []
            while let batch = await queue.next() { batches.append(batch.map(\.id)) }
            return batches
        }
        // First to a consumer that is waiting, then while it may be busy: both paths must hand
        // over every call.
        while !queue.hasWaitingConsumer { try? await Task.sleep(for: .milliseconds(1)) }
        queue.yield([Self.call(1)])
        queue.yield([Self.call(2), Self.call(3)])
        queue.yield([Self.call(4)])
        queue.finish()
        let batches = await consumer.value
        #expect(batches.flatMap { $0 } == [1, 2, 3, 4])
        #expect(batches.first == [1])
    }

    @Test("after finish: next returns nil at once, and later calls are dropped")
    func finished() async {
        let queue = IncomingCallQueue()
        queue.finish()
        queue.yield([Self.call(1)])
        #expect(await queue.next() == nil)
        #expect(await queue.next() == nil)
    }

    @Test("due deadlines come out earliest first; later ones stay")
    func due() {
        var deadlines = DeadlineQueue()
        let now = ContinuousClock.now
        deadlines.insert(now + .seconds(5), id: 3)
        deadlines.insert(now - .seconds(1), id: 2)
        deadlines.insert(now - .seconds(2), id: 1)
        #expect(deadlines.earliest == now - .seconds(2))
        var due: [UInt64] = []
        deadlines.removeDue(at: now) { due.append($0.id) }
        #expect(due == [1, 2])
        #expect(deadlines.count == 1)
        #expect(deadlines.earliest == now + .seconds(5))
    }

    @Test("a due entry carries its deadline, so an owner can tell a reused call id from the call it was for")
    func entryCarriesDeadline() {
        var deadlines = DeadlineQueue()
        let now = ContinuousClock.now
        deadlines.insert(now - .milliseconds(5), id: 1)
        var due: [DeadlineEntry] = []
        deadlines.removeDue(at: now) { due.append($0) }
        #expect(due.map(\.id) == [1])
        #expect(due.first?.deadline == now - .milliseconds(5))
    }

    @Test("entries of ended calls are dropped once they outnumber the live ones, and all of them when none is live")
    func compact() {
        var deadlines = DeadlineQueue()
        let now = ContinuousClock.now
        let total = 2 + DeadlineQueue.slack + 10
        for id in 0..<UInt64(total) { deadlines.insert(now + .seconds(Int64(id) + 1), id: id) }
        let live: Set<UInt64> = [7, 40]
        // Few enough left-behind entries: nothing is done (no pass on every call).
        deadlines.compact(live: 100) { live.contains($0.id) }
        #expect(deadlines.count == total)
        deadlines.compact(live: live.count) { live.contains($0.id) }
        #expect(deadlines.count == 2)
        #expect(deadlines.earliest == now + .seconds(8))
        var due: [UInt64] = []
        deadlines.removeDue(at: now + .seconds(3600)) { due.append($0.id) }
        #expect(due == [7, 40])
        for id in 0..<UInt64(5) { deadlines.insert(now + .seconds(1), id: id) }
        deadlines.compact(live: 0) { _ in true }
        #expect(deadlines.count == 0)
        #expect(deadlines.earliest == nil)
    }
}
