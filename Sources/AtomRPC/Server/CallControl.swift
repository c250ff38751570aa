internal import Synchronization

/// Why a call's handler must stop before it finishes.
enum CallStopReason: Sendable {
    case deadline, cancelled, shutdown
}

/// Connects one running handler to the reactor: the reactor fires it at the deadline or on a
/// CANCEL from the gateway, and the handler's stream writer asks it whether the call is over.
final class CallControl: Sendable {
    private enum State {
        case running(waiter: CheckedContinuation<CallStopReason?, Never>?)
        case fired(CallStopReason?)
    }

    private let state = Mutex(State.running(waiter: nil))
    /// Set by the reactor once it has sent the call's final response.
    private let over = Atomic<Bool>(false)

    var isOver: Bool { over.load(ordering: .acquiring) }
    func markOver() { over.store(true, ordering: .releasing) }

    /// Wakes the watcher. `nil` means the handler finished on its own.
    func fire(_ reason: CallStopReason?) {
        let waiter: CheckedContinuation<CallStopReason?, Never>? = state.withLock { state in
            guard case .running(let waiter) = state else { return nil }
            state = .fired(reason)
            return waiter
        }
        waiter?.resume(returning: reason)
    }

    /// Suspends until the call must stop (or the waiting task is cancelled: then nil).
    func wait() async -> CallStopReason? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let fired: CallStopReason?? = state.withLock { state in
                    switch state {
                    case .running:
                        state = .running(waiter: continuation)
                        return .none
                    case .fired(let reason):
                        return .some(reason)
                    }
                }
                if case .some(let reason) = fired { continuation.resume(returning: reason) }
            }
        } onCancel: {
            self.fire(nil)
        }
    }
}
