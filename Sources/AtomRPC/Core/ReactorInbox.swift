#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import Synchronization

/// An operation a reactor thread can be handed, including "run this job" for its executor.
protocol ReactorOperation: Sendable {
    static func run(_ job: UnownedJob) -> Self
}

/// The hand-off from async code to a reactor thread: a locked queue plus a wake-up signal.
///
/// A submitter off the reactor thread signals only when the queue goes from idle to pending; a
/// submitter on the reactor thread (a job the reactor runs, through `ReactorExecutor`) does not,
/// because the reactor takes the queue before it waits again.
///
/// When the reactor ends it closes the inbox, taking what is queued in the same locked step:
/// from then on `submit` refuses, so nothing can be queued where no reactor will ever look.
final class ReactorInbox<Operation: ReactorOperation>: @unchecked Sendable {
    private struct State {
        var operations: [Operation] = []
        var signaled = false
        var closed = false
    }

    let wake = WakeSignal()
    private let state = Mutex(State())
    private let reactorThread = Atomic<UInt>(0)

    /// Called by the reactor thread when it starts.
    func bindToCurrentThread() {
        reactorThread.store(UInt(pthread_self()), ordering: .releasing)
    }

    var isOnReactorThread: Bool {
        reactorThread.load(ordering: .acquiring) == UInt(pthread_self())
    }

    /// Queues an operation for the reactor; false when the reactor has ended (the inbox is
    /// closed), and the caller must handle the operation itself.
    @discardableResult
    func submit(_ operation: Operation) -> Bool {
        let onReactor = isOnReactorThread
        let (accepted, mustSignal) = state.withLock { state -> (Bool, Bool) in
            guard !state.closed else { return (false, false) }
            state.operations.append(operation)
            if onReactor { return (true, false) }
            defer { state.signaled = true }
            return (true, !state.signaled)
        }
        if mustSignal { wake.signal() }
        return accepted
    }

    /// Takes everything queued. A submission racing with this signals again (the flag is reset
    /// here), so the reactor's next wait returns at once.
    func take() -> [Operation] {
        state.withLock { state in
            defer {
                state.operations.removeAll(keepingCapacity: true)
                state.signaled = false
            }
            return state.operations
        }
    }

    /// Called once by the reactor thread as it ends: refuses every later submission and
    /// returns what was queued, for the reactor to settle.
    func close() -> [Operation] {
        let remaining = state.withLock { state in
            state.closed = true
            defer { state.operations = [] }
            return state.operations
        }
        reactorThread.store(0, ordering: .releasing)
        return remaining
    }

    var isEmpty: Bool { state.withLock { $0.operations.isEmpty } }
}

/// Runs Swift tasks on a reactor thread, between its waits: handlers and callers that prefer
/// this executor (`withTaskExecutorPreference`) talk to the socket with no thread hop at all.
/// Only for code that never blocks: a blocking job stalls the reactor and everything on it.
///
/// Once its reactor has ended, jobs go to the global concurrent executor instead, so no task
/// that prefers this executor is ever stranded.
public final class ReactorExecutor: TaskExecutor, @unchecked Sendable {
    /// Queues a job for the reactor; false once the reactor has ended.
    private let submitJob: @Sendable (UnownedJob) -> Bool

    init(_ submitJob: @escaping @Sendable (UnownedJob) -> Bool) {
        self.submitJob = submitJob
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if !submitJob(job) { globalConcurrentExecutor.enqueue(job) }
    }

    func run(_ job: UnownedJob) {
        job.runSynchronously(on: asUnownedTaskExecutor())
    }

    /// Runs elsewhere a job that was queued when the reactor ended.
    func handOver(_ job: UnownedJob) {
        globalConcurrentExecutor.enqueue(job)
    }
}
