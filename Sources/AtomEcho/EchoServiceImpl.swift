public import AtomAPI
public import AtomProto
public import AtomRPC
internal import Synchronization

/// The diagnostic echo service: answers with what it was sent and which instance answered.
/// The RPC benchmark and the end-to-end tests use it to exercise the transport.
public struct EchoServiceImpl: EchoService {
    private let sequence = SequenceCounter()

    public init() {}

    public func echo(_ request: EchoRequest, context: RPCContext) async throws -> EchoResponse {
        EchoResponse(payload: request.payload, text: request.text, instanceId: context.instanceID, sequence: sequence.next())
    }

    public func echoStream(_ request: EchoStreamRequest, writer: RPCStreamWriter<EchoResponse>, context: RPCContext) async throws {
        guard request.count <= 100_000 else {
            throw RPCError(.invalidArgument, "count must be at most 100000 (got \(request.count))")
        }
        for index in 0..<request.count {
            if index > 0 && request.intervalMs > 0 {
                try await Task.sleep(for: .milliseconds(Int64(request.intervalMs)))
            }
            try await writer.send(EchoResponse(text: request.text, instanceId: context.instanceID, sequence: index))
        }
    }

    public func sleep(_ request: SleepRequest, context: RPCContext) async throws -> SleepResponse {
        let start = ContinuousClock.now
        try await Task.sleep(for: .milliseconds(Int64(request.durationMs)))
        let slept = (ContinuousClock.now - start) / .milliseconds(1)
        return SleepResponse(sleptMs: UInt32(slept.rounded()), instanceId: context.instanceID)
    }

    public func fail(_ request: FailRequest, context: RPCContext) async throws -> EchoResponse {
        if request.code == .ok { return EchoResponse(text: request.message, instanceId: context.instanceID) }
        throw RPCError(request.code, request.message)
    }
}

final class SequenceCounter: Sendable {
    private let value = Atomic<UInt32>(0)
    func next() -> UInt32 { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}
