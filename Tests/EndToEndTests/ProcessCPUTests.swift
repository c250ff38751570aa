import Foundation
import Testing

@testable import AtomCLI

/// `atom bench rpc` reports the CPU each process on a call's path spends per call; a wrong
/// parse of `/proc/<pid>/stat` would put the cost on the wrong process or make it up.
@Suite("Process CPU")
struct ProcessCPUTests {
    @Test("utime and stime are read after the command name's last parenthesis, whatever the name holds")
    func parse() {
        // Fields 14 and 15 (utime, stime) are 250 and 50 ticks; the name has spaces and a ')'.
        let stat = "4242 (atom (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 12345 1000000 500"
        #expect(ProcessCPU.microsecondsUsed(stat: stat, ticksPerSecond: 100) == 3_000_000)
        #expect(ProcessCPU.microsecondsUsed(stat: "4242 (atom) S 1 2", ticksPerSecond: 100) == nil, "too few fields")
        #expect(ProcessCPU.microsecondsUsed(stat: "garbage", ticksPerSecond: 100) == nil)
        #expect(ProcessCPU.microsecondsUsed(stat: stat, ticksPerSecond: 0) == nil)
    }

    @Test("a process that computes is charged for it, per call; a process that is gone gives no figure")
    func measures() throws {
        var meter = ProcessCPU([("self", getpid())])
        // 100 ms of this thread's own CPU time, however loaded the machine is (other suites run
        // in this process at the same time, so the process may use more, never less).
        let wallStart = ContinuousClock.now
        meter.start()
        let threadStart = Self.threadCPUMicroseconds()
        var sum: UInt64 = 0
        while Self.threadCPUMicroseconds() - threadStart < 100_000 { sum = sum &+ UInt64.random(in: 0...9) }
        #expect(sum > 0)
        let perCall = try #require(meter.perCall(calls: 1_000))
        let wall = Double((ContinuousClock.now - wallStart) / .microseconds(1))
        let charged = (perCall["self"] ?? 0) * 1_000
        // Clock ticks are 10 ms: allow two of them either way.
        #expect(charged >= 80_000, "\(perCall)")
        let cores = Double(ProcessInfo.processInfo.activeProcessorCount)
        #expect(charged <= wall * cores + 20_000, "\(perCall) over \(wall) us of wall time")
        #expect(meter.perCall(calls: 0) == nil)

        let exited = Process()
        exited.executableURL = URL(fileURLWithPath: "/bin/true")
        try exited.run()
        exited.waitUntilExit()
        var gone = ProcessCPU([("gone", exited.processIdentifier)])
        gone.start()
        #expect(gone.perCall(calls: 10) == nil)
    }

    private static func threadCPUMicroseconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) * 1_000_000 + Double(time.tv_nsec) / 1_000
    }
}
