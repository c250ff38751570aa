internal import AtomProto
internal import Foundation
internal import Histogram

/// `atom bench codec`: encoding and decoding in this process, no I/O: a search response of 20
/// catalog items (13 KB, the largest answer a hot path sends) and a request envelope with a
/// 100-byte payload (what every call carries). What the generated Swift types and protobuf-c
/// cost per message, to read the round trips of the other suites against.
struct CodecBenchmark {
    let rounds: Int

    func run(into report: inout BenchReport) throws {
        let response = Self.searchResponse()
        let responseBytes = try response.serializedBytes()
        BenchReport.progress("codec: a search response of \(response.items.count) items (\(responseBytes.count) bytes), \(rounds) rounds each way")
        report.results.append(BenchResult(name: "codec_encode_search_response", histogram: try measure { _ = try response.serializedBytes() }))
        report.results.append(BenchResult(name: "codec_decode_search_response", histogram: try measure {
            _ = try responseBytes.withUnsafeBytes { try SearchResponse(serializedBytes: $0) }
        }))
        let envelope = RequestEnvelope(
            service: "atom.v1.Echo", method: "Echo", callId: 42, timeoutMs: 30_000,
            metadata: [MetadataEntry(key: "request-id", value: "6f1c2a9e-0d4b-4e59-9a57-1d2b3c4d5e6f"), MetadataEntry(key: "caller", value: "atom-bench")],
            payload: [UInt8](repeating: 0x61, count: 100))
        let envelopeBytes = try envelope.serializedBytes()
        BenchReport.progress("codec: a request envelope (\(envelopeBytes.count) bytes), \(rounds) rounds each way")
        report.results.append(BenchResult(name: "codec_encode_request_envelope", histogram: try measure { _ = try envelope.serializedBytes() }))
        report.results.append(BenchResult(name: "codec_decode_request_envelope", histogram: try measure {
            _ = try envelopeBytes.withUnsafeBytes { try RequestEnvelope(serializedBytes: $0) }
        }))
    }

    private func measure(_ body: () throws -> Void) throws -> Histogram<UInt64> {
        for _ in 0..<min(rounds, 1_000) { try body() }
        var histogram = BenchReport.histogram()
        for _ in 0..<rounds { try BenchReport.time(&histogram, body) }
        return histogram
    }

    /// Twenty items shaped like the marketplace benchmark's catalog (Debian package descriptions).
    static func searchResponse() -> SearchResponse {
        let items = (0..<20).map { index in
            CatalogSkill(
                id: "python3-example-package-\(index)", name: "python3-example-package-\(index)",
                description: String(repeating: "A library that does useful things with data and text, quickly. ", count: 5),
                category: "python", type: "python", author: "Debian Python Team <team+python@tracker.debian.org>",
                version: "1.2.\(index)", tags: ["python", "library", "data"], packages: ["requests>=2", "numpy<2"],
                ratingAverage: 4.5, ratingCount: 10, downloads: 1_000, createdAtMs: 1_764_000_000_000, updatedAtMs: 1_764_000_000_000,
                source: "bundle:/root/.atom/bench/marketplace/skills.jsonl:\(index)", contentHash: String(repeating: "ab", count: 32),
                entry: "main.py", function: "execute")
        }
        return SearchResponse(items: items, total: 40_000, page: 1, pageSize: 20, totalPages: 2_000)
    }
}
