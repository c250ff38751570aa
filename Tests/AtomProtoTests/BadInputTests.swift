import AtomProto
import AtomTesting
import Testing

private func decodeError<M: ProtoMessage>(_: M.Type, _ bytes: [UInt8]) -> ProtoError? {
    do {
        _ = try M(serializedBytes: bytes)
        return nil
    } catch let error as ProtoError {
        return error
    } catch {
        Issue.record("unexpected error type: \(error)")
        return nil
    }
}

@Suite struct BadInputTests {
    @Test func truncatedBytes() throws {
        let bytes = try RequestEnvelope(service: "atom.v1.Echo", method: "Echo", callId: 300, payload: [1, 2, 3]).serializedBytes()
        for length in 1..<bytes.count {
            let prefix = Array(bytes.prefix(length))
            // Some prefixes end on a field boundary and are valid messages; the others must throw malformed.
            if let error = decodeError(RequestEnvelope.self, prefix) {
                #expect(error.kind == .malformed)
            }
        }
        // Cut inside the "service" string.
        let error = try #require(decodeError(RequestEnvelope.self, Array(bytes.prefix(5))))
        #expect(error.kind == .malformed)
        #expect(error.message == "could not decode atom.v1.RequestEnvelope: not valid protobuf")
        #expect(error.description == error.message)
    }

    @Test func lengthPastTheEnd() throws {
        // Field 2 (text), length 127, but one byte follows.
        #expect(decodeError(EchoRequest.self, [0x12, 0x7F, 0x61])?.kind == .malformed)
        // Nested message (field 4 of InstallEvent) whose length runs past the end.
        #expect(decodeError(InstallEvent.self, [0x22, 0x10, 0x08, 0x01])?.kind == .malformed)
        // A length varint that never ends.
        #expect(decodeError(EchoRequest.self, [0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])?.kind == .malformed)
    }

    @Test func garbage() throws {
        #expect(decodeError(EchoRequest.self, [0xFF, 0xFF, 0xFF, 0xFF])?.kind == .malformed)
        #expect(decodeError(EchoRequest.self, [0x00])?.kind == .malformed)  // field number 0
        var generator = SeededRandom(seed: 7)
        for round in 0..<2_000 {
            let count = Int(generator.next() % 64) + 1
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            // Must never crash; when it throws, the kind is one of the documented decoding errors.
            for error in [decodeError(RequestEnvelope.self, bytes), decodeError(WorkflowSpec.self, bytes), decodeError(InstallEvent.self, bytes)] {
                if let error {
                    #expect(error.kind == .malformed || error.kind == .invalidUTF8, "round \(round)")
                }
            }
        }
    }

    @Test func invalidUTF8() throws {
        // EchoRequest.text (field 2) = C3 28: an invalid two-byte sequence.
        let error = try #require(decodeError(EchoRequest.self, [0x12, 0x02, 0xC3, 0x28]))
        #expect(error.kind == .invalidUTF8)
        #expect(error.message.contains("atom.v1.EchoRequest.text"))
        // A lone continuation byte and an overlong encoding of "/".
        #expect(decodeError(EchoRequest.self, [0x12, 0x01, 0x80])?.kind == .invalidUTF8)
        #expect(decodeError(EchoRequest.self, [0x12, 0x02, 0xC0, 0xAF])?.kind == .invalidUTF8)
        // Nested: RequestEnvelope.metadata[0].key = FF.
        let entry: [UInt8] = [0x0A, 0x01, 0xFF]
        let nested = try #require(decodeError(RequestEnvelope.self, [0x2A, UInt8(entry.count)] + entry))
        #expect(nested.kind == .invalidUTF8)
        #expect(nested.message.contains("atom.v1.MetadataEntry.key"))
        // Repeated string: WorkerReady.methods (field 3).
        #expect(decodeError(WorkerReady.self, [0x1A, 0x01, 0x61, 0x1A, 0x01, 0xFE])?.kind == .invalidUTF8)
        // Bytes fields take anything.
        #expect(try EchoRequest(serializedBytes: [0x0A, 0x02, 0xC3, 0x28]).payload == [0xC3, 0x28])
    }

    @Test func embeddedNUL() throws {
        func encodeError<M: ProtoMessage>(_ message: M) -> ProtoError? {
            do {
                _ = try message.serializedBytes()
                return nil
            } catch {
                return error as? ProtoError
            }
        }
        let error = try #require(encodeError(EchoRequest(text: "a\0b")))
        #expect(error.kind == .embeddedNUL)
        #expect(error.message.contains("atom.v1.EchoRequest.text"))
        #expect(encodeError(WorkerReady(methods: ["ok", "\0"]))?.kind == .embeddedNUL)
        let nested = try #require(encodeError(RequestEnvelope(metadata: [MetadataEntry(key: "k", value: "v\0")])))
        #expect(nested.kind == .embeddedNUL)
        #expect(nested.message.contains("atom.v1.MetadataEntry.value"))
        #expect(encodeError(WorkflowPlan(levels: [.init(stepIds: ["\0"])]))?.kind == .embeddedNUL)
        // NUL in bytes is fine.
        #expect(try EchoRequest(payload: [0, 0]).serializedBytes() == [0x0A, 0x02, 0x00, 0x00])
    }
}
