import Foundation
import Testing

@testable import AtomRPC

/// A reactor polls (timeout 0) only inside the window that call traffic opens, and sleeps
/// (the blocking timeout) otherwise: an idle process never spins.
@Suite("Idle polling")
struct IdlePollTests {
    @Test("no window: always the blocking timeout")
    func off() {
        var poll = IdlePoll(window: .zero)
        poll.noteCallTraffic()
        #expect(poll.timeout(blocking: 50, callsInFlight: 0) == 50)
        #expect(poll.timeout(blocking: -1, callsInFlight: 1) == -1)
    }

    @Test("an idle reactor sleeps; call traffic opens the window")
    func opensOnTraffic() {
        var poll = IdlePoll(window: .seconds(60))
        #expect(poll.timeout(blocking: 50, callsInFlight: 0) == 50, "no traffic yet: sleep")
        poll.noteCallTraffic()
        #expect(poll.timeout(blocking: 50, callsInFlight: 0) == 0, "just after traffic: poll")
        #expect(poll.timeout(blocking: -1, callsInFlight: 1) == 0)
    }

    @Test("a busy reactor (more than one call in flight) sleeps even inside the window")
    func busy() {
        var poll = IdlePoll(window: .seconds(60))
        poll.noteCallTraffic()
        #expect(poll.timeout(blocking: 50, callsInFlight: IdlePoll.lightLoad) == 0)
        #expect(poll.timeout(blocking: 50, callsInFlight: IdlePoll.lightLoad + 1) == 50)
        #expect(poll.timeout(blocking: 50, callsInFlight: 0) == 0)
    }

    @Test("a reactor without a limit polls at any load inside the window, and still sleeps outside it")
    func anyLoad() {
        var poll = IdlePoll(window: .seconds(60), maxCallsInFlight: nil)
        #expect(poll.timeout(blocking: 50, callsInFlight: 100) == 50, "no traffic yet: sleep")
        poll.noteCallTraffic()
        #expect(poll.timeout(blocking: 50, callsInFlight: 100) == 0)
        var short = IdlePoll(window: .milliseconds(1), maxCallsInFlight: nil)
        short.noteCallTraffic()
        Thread.sleep(forTimeInterval: 0.02)
        #expect(short.timeout(blocking: 50, callsInFlight: 100) == 50)
    }

    @Test("the window closes after its length without traffic")
    func closes() throws {
        var poll = IdlePoll(window: .milliseconds(1))
        poll.noteCallTraffic()
        Thread.sleep(forTimeInterval: 0.02)
        #expect(poll.timeout(blocking: 50, callsInFlight: 0) == 50)
    }
}

@Suite("Named threads")
struct NamedThreadTests {
    @Test("the kernel sees the thread's name (truncated to 15 bytes), so top, ps and perf show it")
    func kernelName() async throws {
        let seen: String = await withCheckedContinuation { continuation in
            Thread(named: "atom-test-thread-with-a-long-name") {
                let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
                continuation.resume(returning: comm.trimmingCharacters(in: .whitespacesAndNewlines))
            }.start()
        }
        #expect(seen == "atom-test-threa")
    }
}
