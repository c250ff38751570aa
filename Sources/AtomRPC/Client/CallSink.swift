internal import Synchronization

/// What the reactor delivers to one call.
enum CallEvent: Sendable {
    case message([UInt8])
    case final(Result<[UInt8], RPCError>)
}

/// Where the events of one outgoing call go: a unary continuation or a stream continuation.
///
/// It resolves at most once. Cancellation, the deadline and the reactor race to finish a call;
/// whoever comes first wins and the others are no-ops, so a caller is answered exactly once.
final class CallSink: Sendable {
    private enum State {
        case idle
        case unary(UnsafeContinuation<[UInt8], any Error>)
        case stream(AsyncThrowingStream<[UInt8], any Error>.Continuation)
        /// Finished before a continuation was installed (for example cancelled at once).
        case early(RPCError)
        case finished
    }

    private let state = Mutex<State>(.idle)

    var isFinished: Bool {
        state.withLock {
            if case .finished = $0 { return true }
            if case .early = $0 { return true }
            return false
        }
    }

    func install(unary continuation: UnsafeContinuation<[UInt8], any Error>) {
        let early: RPCError? = state.withLock { state in
            if case .early(let error) = state {
                state = .finished
                return error
            }
            state = .unary(continuation)
            return nil
        }
        if let early { continuation.resume(throwing: early) }
    }

    func install(stream continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation) {
        let early: RPCError? = state.withLock { state in
            if case .early(let error) = state {
                state = .finished
                return error
            }
            state = .stream(continuation)
            return nil
        }
        if let early { continuation.finish(throwing: early) }
    }

    func deliver(_ event: CallEvent) {
        switch event {
        case .message(let bytes):
            state.withLock { state in
                if case .stream(let continuation) = state { continuation.yield(bytes) }
            }
        case .final(let result):
            let previous = state.withLock { state -> State in
                let previous = state
                switch state {
                case .idle:
                    if case .failure(let error) = result { state = .early(error) } else { state = .finished }
                case .unary, .stream: state = .finished
                case .early, .finished: break
                }
                return previous
            }
            switch previous {
            case .unary(let continuation): continuation.resume(with: result.mapError { $0 as any Error })
            case .stream(let continuation):
                switch result {
                case .success: continuation.finish()
                case .failure(let error): continuation.finish(throwing: error)
                }
            case .idle, .early, .finished: break
            }
        }
    }
}
