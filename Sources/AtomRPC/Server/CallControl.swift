internal import Synchronization

/// Why a call's handler must stop before it finishes.
enum CallStopReason: Sendable {
    case deadline, cancelled, shutdown
}

/// Connects one running handler to the reactor: the reactor cancels the handler's task at the
/// deadline or on a CANCEL from the gateway, and the handler's stream writer asks it whether the
/// call is over.
///
/// The handler's task registers itself while it runs (`run`). Cancelling goes through the
/// lock that also guards the registration, so the task is never touched after it has finished.
final class CallControl: Sendable {
    private struct State {
        var task: TaskReference?
        var stopped = false
    }

    /// The running task, for cancellation only. It is set and cleared by the task itself,
    /// under the lock, so it never outlives the task.
    private struct TaskReference: @unchecked Sendable {
        let task: UnsafeCurrentTask
    }

    private let state = Mutex(State())
    /// Set by the reactor once it has sent the call's final response.
    private let over = Atomic<Bool>(false)

    var isOver: Bool { over.load(ordering: .acquiring) }
    func markOver() { over.store(true, ordering: .releasing) }

    /// Cancels the handler (now, or as soon as it starts).
    func stop() {
        state.withLock { state in
            state.stopped = true
            state.task?.task.cancel()
        }
    }

    /// Runs `body` as the call's handler in the current task, cancellable through `stop()`.
    func run<T>(_ body: () async -> T) async -> T {
        withUnsafeCurrentTask { task in
            guard let task else { return }
            state.withLock { state in
                state.task = TaskReference(task: task)
                if state.stopped { task.cancel() }
            }
        }
        let result = await body()
        state.withLock { $0.task = nil }
        return result
    }
}
