#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import Foundation
internal import Synchronization
internal import CZeroMQ

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
/// Only those threads get it, one by one, never the whole process: processes started by a
/// service (uv, npm, skill hosts) inherit the slice of the thread that starts them, and
/// CPU-bound work cut finely loses time to switching. A reactor thread sets its own as it
/// starts; libzmq's I/O thread inherits it from the thread that creates a context's first
/// socket, which holds the slice for that moment (`ZMQContext`).
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

    private static func sliceFromProcessEnvironment() -> Duration? {
        guard let text = ProcessInfo.processInfo.environment["ATOM_REACTOR_SLICE_US"], !text.isEmpty else {
            return defaultSlice
        }
        // An invalid value is reported by the process's settings check; here it means the default.
        guard let microseconds = Int(text), (0...100_000).contains(microseconds) else { return defaultSlice }
        return microseconds == 0 ? nil : .microseconds(microseconds)
    }

    /// Gives the calling thread the configured slice (reactor threads, as they start).
    static func applyToCurrentThread() {
        if let slice { _ = setSlice(slice) }
    }

    /// Runs `body` with the configured slice on the calling thread, then puts the thread's
    /// slice back: threads `body` creates (libzmq's I/O thread) inherit the short slice, the
    /// caller keeps its own.
    static func withSliceOnCurrentThread<T>(_ body: () throws -> T) rethrows -> T {
        guard let slice, let previous = currentSlice(), previous != slice else { return try body() }
        _ = setSlice(slice)
        defer { _ = setSlice(previous) }
        return try body()
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
    /// nice value; true when the kernel now reports that slice (it clamps to 100 µs - 100 ms).
    @discardableResult
    static func setSlice(_ slice: Duration, thread: Int32 = 0) -> Bool {
        #if os(Linux)
        guard var attributes = SchedulerAttributes.read(thread: thread), attributes.isFair else { return false }
        let nanoseconds = UInt64(clamping: slice.components.seconds * 1_000_000_000 + slice.components.attoseconds / 1_000_000_000)
        attributes.runtime = nanoseconds
        guard attributes.write(thread: thread) else { return false }
        return SchedulerAttributes.read(thread: thread)?.runtime == min(max(nanoseconds, 100_000), 100_000_000)
        #else
        return false
        #endif
    }
}

#if os(Linux)
/// A thread's scheduling attributes (`struct sched_attr`, through the CZeroMQ shim).
private struct SchedulerAttributes {
    private var raw = atom_sched_attr()

    private static let policyOther: UInt32 = 0
    private static let policyBatch: UInt32 = 3
    /// SCHED_FLAG_RESET_ON_FORK: the one flag carried over when writing back.
    private static let resetOnFork: UInt64 = 0x01

    var isFair: Bool { raw.sched_policy == Self.policyOther || raw.sched_policy == Self.policyBatch }

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
        raw.sched_flags &= Self.resetOnFork
        // Utilization clamps are written only with their flags; none is implied.
        raw.sched_util_min = 0
        raw.sched_util_max = 0
        return atom_sched_setattr(thread, &raw) == 0
    }
}
#endif
