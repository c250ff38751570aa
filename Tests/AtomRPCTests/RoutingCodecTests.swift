import AtomProto
import AtomTesting
import Testing

@testable import AtomRPC

/// The hand-written routing codec must agree with the generated protobuf-c codec on every input
/// it accepts, and never trap on any input.
@Suite("Routing codec")
struct RoutingCodecTests {
    static let headers: [RouteHeader] = [
        RouteHeader(),
        RouteHeader(callId: 1),
        RouteHeader(callId: 127, timeoutMs: 128),
        RouteHeader(callId: 300, timeoutMs: 0, endOfStream: true),
        RouteHeader(callId: .max, timeoutMs: .max, endOfStream: true),
        RouteHeader(callId: 1 << 35, timeoutMs: 16_384, endOfStream: false),
    ]

    @Test("RouteHeader encodes byte for byte as the generated codec does", arguments: headers)
    func encodesLikeGenerated(_ header: RouteHeader) throws {
        #expect(RoutingCodec.encode(header) == (try header.serializedBytes()))
    }

    @Test("RouteHeader decodes what the generated codec encodes", arguments: headers)
    func decodesGenerated(_ header: RouteHeader) throws {
        #expect(RoutingCodec.routeHeader(try header.serializedBytes()) == header)
    }

    @Test("the request head matches the generated decoder, metadata and payload skipped")
    func requestHead() throws {
        let envelopes = [
            RequestEnvelope(),
            RequestEnvelope(service: "atom.v1.Echo", method: "Echo", callId: 42, timeoutMs: 5_000),
            RequestEnvelope(
                service: "atom.v1.Loader", method: "ExecuteSkill", callId: .max, timeoutMs: .max,
                metadata: [MetadataEntry(key: "request-id", value: "abc-1"), MetadataEntry(key: "caller", value: "é ☃")],
                payload: [UInt8](repeating: 0xFF, count: 70_000)),
            RequestEnvelope(service: "s☃", method: "", callId: 0, timeoutMs: 1, payload: [0x08, 0x96, 0x01]),
        ]
        for envelope in envelopes {
            let bytes = try envelope.serializedBytes()
            let head = try #require(RoutingCodec.requestHead(bytes))
            let full = try RequestEnvelope(serializedBytes: bytes)
            #expect(head.service == full.service)
            #expect(head.method == full.method)
            #expect(head.callID == full.callId)
            #expect(head.timeoutMs == full.timeoutMs)
        }
    }

    @Test("a whole request envelope reads as the generated decoder reads it: head, metadata in order, payload")
    func wholeRequest() throws {
        let envelopes = [
            RequestEnvelope(),
            RequestEnvelope(service: "atom.v1.Echo", method: "Echo", callId: 42, timeoutMs: 5_000, payload: [1, 2, 3]),
            RequestEnvelope(
                service: "atom.v1.Loader", method: "ExecuteSkill", callId: .max, timeoutMs: .max,
                metadata: [
                    MetadataEntry(key: "request-id", value: "abc-1"), MetadataEntry(key: "caller", value: "é ☃"),
                    MetadataEntry(), MetadataEntry(key: "caller", value: "again"),
                ],
                payload: [UInt8](repeating: 0xFF, count: 70_000)),
        ]
        for envelope in envelopes {
            let bytes = try envelope.serializedBytes()
            #expect(RoutingCodec.encodeRequest(
                service: envelope.service, method: envelope.method, callID: envelope.callId, timeoutMs: envelope.timeoutMs,
                metadata: envelope.metadata, payload: envelope.payload) == bytes)
            let request = try #require(RoutingCodec.request(bytes))
            let full = try RequestEnvelope(serializedBytes: bytes)
            #expect(request.head == RoutingCodec.requestHead(bytes))
            #expect(request.metadata == full.metadata)
            #expect(request.payload == full.payload)
        }
        // A metadata entry whose own bytes are malformed makes the envelope malformed, as it
        // does for the generated decoder.
        let broken: [UInt8] = [0x2A, 0x02, 0x0A, 0x05]
        #expect(RoutingCodec.request(broken) == nil)
        #expect((try? RequestEnvelope(serializedBytes: broken)) == nil)
        // Unknown fields inside an entry are skipped.
        let padded: [UInt8] = [0x2A, 0x08, 0x0A, 0x01, 0x6B, 0x18, 0x07, 0x12, 0x01, 0x76]
        #expect(RoutingCodec.request(padded)?.metadata == [MetadataEntry(key: "k", value: "v")])
        #expect(try RequestEnvelope(serializedBytes: padded).metadata == [MetadataEntry(key: "k", value: "v")])
    }

    @Test("random request envelopes encode byte for byte as the generated codec encodes them")
    func randomRequestEncoding() throws {
        var generator = SeededRandom.forTest(10)
        let texts = ["", "a", "atom.v1.Echo", "é☃", String(repeating: "x", count: 127), String(repeating: "y", count: 128), String(repeating: "z", count: 20_000)]
        for _ in 0..<2_000 {
            let metadata = (0..<Int.random(in: 0...4, using: &generator)).map { _ in
                MetadataEntry(key: texts.randomElement(using: &generator)!, value: texts.randomElement(using: &generator)!)
            }
            let envelope = RequestEnvelope(
                service: texts.randomElement(using: &generator)!, method: texts.randomElement(using: &generator)!,
                callId: [0, 1, 127, 128, .max].randomElement(using: &generator)!,
                timeoutMs: [0, 1, 16_383, 16_384, .max].randomElement(using: &generator)!,
                metadata: metadata,
                payload: [UInt8](repeating: 0x5A, count: [0, 1, 127, 128, 300].randomElement(using: &generator)!))
            let encoded = RoutingCodec.encodeRequest(
                service: envelope.service, method: envelope.method, callID: envelope.callId, timeoutMs: envelope.timeoutMs,
                metadata: envelope.metadata, payload: envelope.payload)
            #expect(encoded == (try envelope.serializedBytes()))
        }
    }

    @Test("unknown fields of every wire type are skipped; the last value of a field wins")
    func unknownFieldsAndRepeats() throws {
        var bytes = try RequestEnvelope(service: "first", method: "m", callId: 1).serializedBytes()
        bytes += [0x48, 0x05]  // field 9, varint
        bytes += [0x51] + [UInt8](repeating: 1, count: 8)  // field 10, fixed64
        bytes += [0x5D, 1, 2, 3, 4]  // field 11, fixed32
        bytes += [0x62, 0x02, 0xAA, 0xBB]  // field 12, length-delimited
        bytes += try RequestEnvelope(service: "second", callId: 7).serializedBytes()
        let head = try #require(RoutingCodec.requestHead(bytes))
        let full = try RequestEnvelope(serializedBytes: bytes)
        #expect(head.service == "second" && full.service == "second")
        #expect(head.method == "m" && head.callID == 7 && full.callId == 7)
    }

    @Test(
        "malformed bytes are refused, never trapping",
        arguments: [
            [0x0A, 0x05, 0x61],  // a string longer than what is left
            [0x18],  // a tag with no value
            [0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],  // an 11-byte varint
            [0x00, 0x01],  // field number 0
            [0x1B],  // a group
            [0x0F],  // wire type 7
            [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F],  // a length of 4 GiB
            [0x51, 0x01, 0x02],  // a truncated fixed64
        ] as [[UInt8]])
    func malformed(_ bytes: [UInt8]) {
        #expect(RoutingCodec.requestHead(bytes) == nil)
        #expect(RoutingCodec.request(bytes) == nil)
        #expect(RoutingCodec.routeHeader(bytes) == nil)
    }

    @Test("an OK response envelope encodes byte for byte as the generated codec does, and reads back")
    func okResponses() throws {
        let cases: [(UInt64, [UInt8], Bool)] = [
            (0, [], false), (1, [], true), (300, [1, 2, 3], true), (.max, [UInt8](repeating: 9, count: 70_000), false),
        ]
        for (callID, payload, end) in cases {
            let generated = try ResponseEnvelope(callId: callID, status: RPCStatus(code: .ok), payload: payload, endOfStream: end).serializedBytes()
            #expect(RoutingCodec.encodeOKResponse(callID: callID, payload: payload, endOfStream: end) == generated)
            #expect(RoutingCodec.okResponse(generated) == RoutingCodec.OKResponse(callID: callID, payload: payload, endOfStream: end))
        }
        // No status at all means OK too.
        let bare = try ResponseEnvelope(callId: 5, payload: [7], endOfStream: true).serializedBytes()
        #expect(RoutingCodec.okResponse(bare) == RoutingCodec.OKResponse(callID: 5, payload: [7], endOfStream: true))
        // An OK status with a message is still OK.
        let chatty = try ResponseEnvelope(callId: 6, status: RPCStatus(code: .ok, message: "fine"), endOfStream: true).serializedBytes()
        #expect(RoutingCodec.okResponse(chatty)?.callID == 6)
    }

    @Test("any other status is left to the generated decoder", arguments: [StatusCode.cancelled, .notFound, .internal, .unrecognized(99)])
    func failedResponses(_ code: StatusCode) throws {
        let details = [StatusDetail(type: "atom.v1.ErrorInfo", value: [1, 2])]
        let bytes = try ResponseEnvelope(callId: 8, status: RPCStatus(code: code, message: "no", details: details), endOfStream: true).serializedBytes()
        #expect(RoutingCodec.okResponse(bytes) == nil)
    }

    @Test("random bytes never trap")
    func randomBytes() {
        var generator = SeededRandom.forTest(8)
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...24, using: &generator)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = RoutingCodec.routeHeader(bytes)
            _ = RoutingCodec.requestHead(bytes)
            _ = RoutingCodec.request(bytes)
            _ = RoutingCodec.okResponse(bytes)
        }
    }

    /// Random well-typed messages: the routed fields in any order, repeated, mixed with unknown
    /// fields of every wire type. (A known field sent with the wrong wire type is skipped as
    /// an unknown field, as protobuf's reference implementations do; protobuf-c is laxer there,
    /// so such inputs are not compared.)
    @Test("random well-typed messages decode as the generated codec decodes them")
    func randomWellTyped() throws {
        var generator = SeededRandom.forTest(9)
        func varint(_ value: UInt64) -> [UInt8] {
            var bytes: [UInt8] = []
            ProtoWire.appendVarint(value, to: &bytes)
            return bytes
        }
        func randomValue() -> UInt64 {
            [UInt64.random(in: 0...1, using: &generator), UInt64.random(in: 0...300, using: &generator),
             UInt64.random(in: 0...UInt64.max, using: &generator)].randomElement(using: &generator)!
        }
        func unknownField() -> [UInt8] {
            let field = UInt64.random(in: 7...40, using: &generator)
            switch Int.random(in: 0..<4, using: &generator) {
            case 0: return varint(field << 3) + varint(randomValue())
            case 1: return varint(field << 3 | 1) + [UInt8](repeating: 7, count: 8)
            case 2: return varint(field << 3 | 5) + [1, 2, 3, 4]
            default: return varint(field << 3 | 2) + [3, 0x61, 0x62, 0x63]
            }
        }
        for _ in 0..<3_000 {
            var route: [UInt8] = []
            var request: [UInt8] = []
            for _ in 0..<Int.random(in: 0...6, using: &generator) {
                switch Int.random(in: 0..<6, using: &generator) {
                case 0: route += varint(1 << 3) + varint(randomValue()); request += varint(3 << 3) + varint(randomValue())
                case 1: route += varint(2 << 3) + varint(randomValue()); request += varint(4 << 3) + varint(randomValue())
                case 2: route += varint(3 << 3) + varint(randomValue())
                case 3:
                    let text = Array(["", "atom.v1.Echo", "é☃", "x"].randomElement(using: &generator)!.utf8)
                    request += varint(UInt64.random(in: 1...2, using: &generator) << 3 | 2) + varint(UInt64(text.count)) + text
                case 4:
                    if Bool.random(using: &generator) {
                        request += varint(6 << 3 | 2) + [2, 0xFF, 0x00]
                    } else {
                        // A metadata entry: key and value in either order, maybe repeated.
                        var entry: [UInt8] = []
                        for _ in 0..<Int.random(in: 0...3, using: &generator) {
                            let text = Array(["", "k", "request-id", "☃"].randomElement(using: &generator)!.utf8)
                            entry += varint(UInt64.random(in: 1...2, using: &generator) << 3 | 2) + varint(UInt64(text.count)) + text
                        }
                        request += varint(5 << 3 | 2) + varint(UInt64(entry.count)) + entry
                    }
                default: route += unknownField(); request += unknownField()
                }
            }
            #expect(RoutingCodec.routeHeader(route) == (try RouteHeader(serializedBytes: route)), "\(route)")
            let head = try #require(RoutingCodec.requestHead(request))
            let full = try RequestEnvelope(serializedBytes: request)
            let whole = try #require(RoutingCodec.request(request))
            #expect(whole.head == head && whole.payload == full.payload && whole.metadata == full.metadata, "\(request)")
            #expect(head.service == full.service && head.method == full.method, "\(request)")
            #expect(head.callID == full.callId && head.timeoutMs == full.timeoutMs, "\(request)")

            var response: [UInt8] = []
            for _ in 0..<Int.random(in: 0...6, using: &generator) {
                switch Int.random(in: 0..<5, using: &generator) {
                case 0: response += varint(1 << 3) + varint(randomValue())
                case 1:
                    var status = varint(1 << 3) + varint(UInt64.random(in: 0...3, using: &generator))
                    if Bool.random(using: &generator) { status += [0x12, 0x02, 0x68, 0x69] }
                    response += [0x12] + varint(UInt64(status.count)) + status
                case 2: response += [0x1A, 0x03, 1, 2, 3]
                case 3: response += varint(4 << 3) + varint(randomValue())
                default: response += unknownField()
                }
            }
            let generated = try ResponseEnvelope(serializedBytes: response)
            let fast = RoutingCodec.okResponse(response)
            if (generated.status?.code ?? .ok) == .ok {
                #expect(fast == RoutingCodec.OKResponse(callID: generated.callId, payload: generated.payload, endOfStream: generated.endOfStream), "\(response)")
            } else {
                #expect(fast == nil, "\(response)")
            }
        }
    }
}
