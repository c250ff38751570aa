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

/// The hand-off from async code to a reactor thread: a locked queue plus a wake-up pipe.
///
/// A submitter off the reactor thread writes one byte to the pipe only when the queue goes
/// from idle to pending; a submitter on the reactor thread (a job the reactor runs, through
/// `ReactorExecutor`) writes nothing, because the reactor drains the queue before it polls.
final class ReactorInbox<Operation: ReactorOperation>: @unchecked Sendable {
    private struct State {
        var operations: [Operation] = []
        var signaled = false
    }

    let wake = WakeSignal()
    private let state = Mutex(State())
    private let reactorThread = Atomic<UInt>(0)

    /// Called once by the reactor thread when it starts.
    func bindToCurrentThread() {
        reactorThread.store(UInt(pthread_self()), ordering: .releasing)
    }

    var isOnReactorThread: Bool {
        reactorThread.load(ordering: .acquiring) == UInt(pthread_self())
    }

    func submit(_ operation: Operation) {
        let onReactor = isOnReactorThread
        let mustSignal = state.withLock { state in
            state.operations.append(operation)
            if onReactor { return false }
            defer { state.signaled = true }
            return !state.signaled
        }
        if mustSignal { wake.signal() }
    }

    /// Takes everything queued. The reactor drains the pipe before calling this, so a
    /// submission racing with it leaves a byte in the pipe and is seen on the next poll.
    func take() -> [Operation] {
        state.withLock { state in
            defer {
                state.operations.removeAll(keepingCapacity: true)
                state.signaled = false
            }
            return state.operations
        }
    }

    var isEmpty: Bool { state.withLock { $0.operations.isEmpty } }
}

/// Runs Swift tasks on a reactor thread, between its polls: handlers and callers that prefer
/// this executor (`withTaskExecutorPreference`) talk to the socket with no thread hop at all.
/// Only for code that never blocks: a blocking job stalls the reactor and everything on it.
///
/// Once its reactor has stopped, jobs go to the global concurrent executor instead, so no task
/// that prefers this executor is ever stranded.
public final class ReactorExecutor: TaskExecutor, @unchecked Sendable {
    private let submitJob: @Sendable (UnownedJob) -> Void
    private let retired = Atomic<Bool>(false)

    init(_ submitJob: @escaping @Sendable (UnownedJob) -> Void) {
        self.submitJob = submitJob
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if retired.load(ordering: .acquiring) {
            globalConcurrentExecutor.enqueue(job)
        } else {
            submitJob(job)
        }
    }

    func run(_ job: UnownedJob) {
        job.runSynchronously(on: asUnownedTaskExecutor())
    }

    /// Called by the reactor thread as it exits: later jobs go to the global executor; the
    /// caller then hands over the jobs already queued with `handOver`.
    func retire() {
        retired.store(true, ordering: .releasing)
    }

    func handOver(_ job: UnownedJob) {
        globalConcurrentExecutor.enqueue(job)
    }
}
