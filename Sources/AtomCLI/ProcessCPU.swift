internal import Foundation

/// The CPU time processes use during a benchmark phase, per call: where a call's cost goes
/// (`cpu_us_per_call` of a throughput result).
///
/// Why: on a machine with two cores and six busy threads, calls per second follow the CPU each
/// call costs the processes on its path, and the latency figures do not show which process
/// pays. Read from `/proc/<pid>/stat` (user + system time of every thread, in clock ticks of
/// 10 ms, each rounded down: a difference is good to about two ticks, so under a microsecond
/// per call only over a phase of tens of thousands of calls, as the rpc suite's 3 s phases
/// are; a few microseconds in a `--quick` run). Absent where there is no `/proc`.
struct ProcessCPU {
    /// What the process is on the call's path ("gateway", "service", "client", ...) and its pid.
    let processes: [(role: String, pid: Int32)]
    private var startedAt: [Int32: Double] = [:]

    init(_ processes: [(role: String, pid: Int32)]) {
        self.processes = processes
    }

    /// Notes each process's CPU time so far.
    mutating func start() {
        startedAt = [:]
        for (_, pid) in processes {
            if let used = Self.microsecondsUsed(pid: pid) { startedAt[pid] = used }
        }
    }

    /// Each process's CPU time since `start()`, divided by `calls`, in µs (rounded to 0.1);
    /// nil when any process could not be read.
    func perCall(calls: UInt64) -> [String: Double]? {
        guard calls > 0 else { return nil }
        var perCall: [String: Double] = [:]
        for (role, pid) in processes {
            guard let before = startedAt[pid], let now = Self.microsecondsUsed(pid: pid) else { return nil }
            perCall[role] = ((now - before) / Double(calls) * 10).rounded() / 10
        }
        return perCall
    }

    /// User + system time of every thread of `pid`, in µs; nil without `/proc` or when the
    /// process is gone.
    static func microsecondsUsed(pid: Int32) -> Double? {
        guard let stat = ProcStat.read(pid) else { return nil }
        return microsecondsUsed(stat: stat, ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))))
    }

    /// Parses a `/proc/<pid>/stat` line: utime and stime are fields 14 and 15.
    static func microsecondsUsed(stat: String, ticksPerSecond: Double) -> Double? {
        guard ticksPerSecond > 0, let fields = ProcStat.fields(stat) else { return nil }
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / ticksPerSecond * 1_000_000
    }
}
