internal import Synchronization

/// Hands the calls a server reactor receives to the task that starts their handlers.
///
/// It does what an unbounded `AsyncStream<[IncomingCall]>` did, on the path of every batch of
/// calls, for less: the stream's storage is generic code in the concurrency library, run
/// unspecialized, and it looked up generic metadata and moved elements through a deque on
/// every batch. Profiled in the echo service under 8 callers (`atom bench rpc`), the stream was
/// about a seventh of the reactor thread's user time. Here a batch is one locked step and, when
/// the consumer is waiting, one continuation resumed.
///
/// One producer (the reactor thread) and one consumer (the accepting task in `RPCServer.run`).
/// The consumer ends when the reactor calls `finish()`, which it always does as it stops,
/// including when `run()`'s task is cancelled (the cancellation handler stops the reactor).
final class IncomingCallQueue: Sendable {
    private struct State {
        /// Calls received while the consumer was busy, oldest first.
        var pending: [IncomingCall] = []
        var waiter: UnsafeContinuation<[IncomingCall]?, Never>?
        var finished = false
    }

    private let state = Mutex(State())

    /// Queues calls for the consumer (a waiting consumer gets them at once). Calls queued after
    /// `finish()` are dropped: nothing would start them.
    func yield(_ calls: [IncomingCall]) {
        let waiter = state.withLock { state -> UnsafeContinuation<[IncomingCall]?, Never>? in
            guard !state.finished else { return nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending.append(contentsOf: calls)
            return nil
        }
        waiter?.resume(returning: calls)
    }

    /// Whether the consumer is waiting in `next()` (for tests).
    var hasWaitingConsumer: Bool { state.withLock { $0.waiter != nil } }

    /// No more calls: the consumer gets what is pending, then nil.
    func finish() {
        let waiter = state.withLock { state -> UnsafeContinuation<[IncomingCall]?, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// The calls received since the last call of `next()`, waiting for some if there are none;
    /// nil once the queue is finished and drained.
    func next() async -> [IncomingCall]? {
        await withUnsafeContinuation { continuation in
            enum Outcome {
                case calls([IncomingCall])
                case ended
                case waiting
            }
            let outcome = state.withLock { state -> Outcome in
                if !state.pending.isEmpty {
                    defer { state.pending = [] }
                    return .calls(state.pending)
                }
                if state.finished { return .ended }
                state.waiter = continuation
                return .waiting
            }
            switch outcome {
            case .calls(let calls): continuation.resume(returning: calls)
            case .ended: continuation.resume(returning: nil)
            case .waiting: break
            }
        }
    }
}
