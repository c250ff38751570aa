#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import Foundation
internal import Synchronization
internal import CZeroMQ
internal import AtomMetrics

/// Asks the kernel for a short scheduler slice for the threads on the path of every message:
/// reactor threads and libzmq's I/O threads (`ATOM_REACTOR_SLICE_US`, default 100 µs).
///
/// Why: Linux 6.12 and later schedule normal threads by EEVDF, where a thread may ask for a
/// shorter slice than the default (1.4 ms on a 2-vCPU machine) with `sched_setattr`, no
/// privilege needed. A thread with a short slice that wakes up preempts the thread running on
/// its CPU sooner, instead of queueing behind it: a reactor woken by a message, or an I/O
/// thread handed one, runs within a short slice. It does not change a thread's share of the
/// CPU, only how finely it is cut. These threads run for microseconds at a time, so for them
/// that costs nothing. Measured with `atom bench rpc --rounds 500 --seconds 3` in 8 interleaved
/// pairs against the build before it (the baselines' threads get the slice too): 8-caller median
/// 16,471 to 18,900 calls/s (0.83 to 0.91 of the C broker in the same runs), unary median 239 to
/// 199 µs, CPU per call 103 to 91 µs.
///
/// Only those threads get it, never the whole process or what they start: processes started
/// by a service (uv, npm, skill hosts) would inherit it, and CPU-bound work cut finely loses
/// time to switching. A thread on the message path sets its own as it starts, with the kernel's
/// reset-on-fork flag, so the threads and processes it starts get the kernel's defaults (the
/// dispatch pool grows from whichever thread queues work). libzmq's I/O thread is the one
/// thread meant to inherit it: the thread that creates a context's first socket holds the
/// slice, inheritable, for that moment (`ZMQContext.makeSocket`).
///
/// A thread's policy and nice value are kept. On kernels before 6.12, and on threads with a
/// real-time policy, nothing changes; elsewhere than Linux it does nothing.
public enum ReactorScheduling {
    /// The slice when `ATOM_REACTOR_SLICE_US` is not set.
    public static let defaultSlice: Duration = .microseconds(100)

    /// nil: leave the kernel's default. Until `configure` is called, the process environment's
    /// `ATOM_REACTOR_SLICE_US` (processes that read the config file call `configure`).
    private static let configured = Mutex<Duration?>(sliceFromProcessEnvironment())

    /// The slice reactor and I/O threads ask for from now on (nil: the kernel's default).
    public static func configure(slice: Duration?) {
        configured.withLock { $0 = slice }
    }

    public static var slice: Duration? { configured.withLock { $0 } }

    /// Read the way every process reads it (`AtomEnvironment`); an invalid environment is reported
    /// by the process's own settings check, and here means the default.
    private static func sliceFromProcessEnvironment() -> Duration? {
        guard let environment = try? AtomEnvironment(ProcessInfo.processInfo.environment) else { return defaultSlice }
        return environment.reactorSlice
    }

    /// The slice the kernel reports for the last thread that asked for it (nil: none took it:
    /// not configured, or a kernel before 6.12). What the benchmark report records.
    public static var appliedSlice: Duration? { applied.withLock { $0 } }
    private static let applied = Mutex<Duration?>(nil)

    /// Gives the calling thread the configured slice (threads on the message path, as they
    /// start). Threads and processes it starts later do not inherit it (the kernel's
    /// reset-on-fork flag): on Linux the dispatch pool grows from whichever thread queues work,
    /// and a reactor queues work all the time.
    static func applyToCurrentThread() {
        guard let slice else { return }
        if setSlice(slice, resetOnFork: true) {
            let reported = currentSlice()
            applied.withLock { $0 = reported }
        }
    }

    /// Runs `body` with the configured slice on the calling thread, inheritable, then puts the
    /// thread's own attributes back (its slice and its reset-on-fork flag): threads `body`
    /// creates (libzmq's I/O thread) get the short slice, the caller keeps what it had.
    static func withSliceOnCurrentThread<T>(_ body: () throws -> T) rethrows -> T {
        #if os(Linux)
        guard let slice, let original = SchedulerAttributes.read(thread: 0), original.isFair else { return try body() }
        var during = original
        during.runtime = nanoseconds(slice)
        during.resetOnFork = false
        guard during.write(thread: 0) else { return try body() }
        // Written back as read: a slice this thread inherited from whoever started the process
        // is kept, not replaced by the kernel's default.
        defer { _ = original.write(thread: 0) }
        return try body()
        #else
        return try body()
        #endif
    }

    /// The slice of thread `thread` (0: the calling thread); nil where the kernel does not tell
    /// (before Linux 6.12, a real-time thread, not Linux).
    static func currentSlice(thread: Int32 = 0) -> Duration? {
        #if os(Linux)
        guard let attributes = SchedulerAttributes.read(thread: thread), attributes.isFair, attributes.runtime > 0 else {
            return nil
        }
        return .nanoseconds(Int64(clamping: attributes.runtime))
        #else
        return nil
        #endif
    }

    /// Asks for `slice` for thread `thread` (0: the calling thread), keeping its policy and
    /// nice value, and with `resetOnFork` keeping it from what the thread starts; true when the
    /// kernel now reports that slice (it clamps to 100 us - 100 ms).
    @discardableResult
    static func setSlice(_ slice: Duration, thread: Int32 = 0, resetOnFork: Bool = false) -> Bool {
        #if os(Linux)
        guard var attributes = SchedulerAttributes.read(thread: thread), attributes.isFair else { return false }
        attributes.runtime = nanoseconds(slice)
        if resetOnFork { attributes.resetOnFork = true }
        guard attributes.write(thread: thread) else { return false }
        return SchedulerAttributes.read(thread: thread)?.runtime == min(max(nanoseconds(slice), 100_000), 100_000_000)
        #else
        return false
        #endif
    }

    private static func nanoseconds(_ duration: Duration) -> UInt64 {
        LatencyRecorder.nanoseconds(duration)
    }
}

#if os(Linux)
/// A thread's scheduling attributes (`struct sched_attr`, through the CZeroMQ shim).
private struct SchedulerAttributes {
    private var raw = atom_sched_attr()

    private static let policyOther: UInt32 = 0
    private static let policyBatch: UInt32 = 3
    /// SCHED_FLAG_RESET_ON_FORK: the one flag carried over when writing back.
    private static let resetOnForkFlag: UInt64 = 0x01

    var isFair: Bool { raw.sched_policy == Self.policyOther || raw.sched_policy == Self.policyBatch }

    /// Threads and processes this thread starts get the kernel's defaults, not its slice.
    var resetOnFork: Bool {
        get { raw.sched_flags & Self.resetOnForkFlag != 0 }
        set { raw.sched_flags = newValue ? raw.sched_flags | Self.resetOnForkFlag : raw.sched_flags & ~Self.resetOnForkFlag }
    }

    /// For SCHED_OTHER and SCHED_BATCH: the slice in nanoseconds (Linux 6.12 and later; 0 before).
    var runtime: UInt64 {
        get { raw.sched_runtime }
        set { raw.sched_runtime = newValue }
    }

    static func read(thread: Int32) -> SchedulerAttributes? {
        var attributes = SchedulerAttributes()
        return atom_sched_getattr(thread, &attributes.raw) == 0 ? attributes : nil
    }

    /// Writes back what was read, with the new runtime: the same policy, nice and priority.
    func write(thread: Int32) -> Bool {
        var raw = self.raw
        raw.sched_flags &= Self.resetOnForkFlag
        // Utilization clamps are written only with their flags; none is implied.
        raw.sched_util_min = 0
        raw.sched_util_max = 0
        return atom_sched_setattr(thread, &raw) == 0
    }
}
#endif
