internal import AtomProto
internal import Foundation

/// The per-call cost of the service's search code with nothing else around it: a catalog in
/// this process (imported from a bundle exactly as the service imports it), then each query
/// searched one call after another on one thread, as the benchmark's baselines run theirs. It is
/// `Catalog.encodedSearch` (validation, index search, the page's bytes), the code whose
/// duration the service reports as `service_ns`, without the RPC runtime, the thread hop or the
/// other processes of a call. `atom bench marketplace` runs it (`atom-marketplace bench-search`)
/// and reports `search_<shape>_inprocess`.
///
/// `ATOM_BENCH_SEARCH_PAUSE_US` sleeps that long before each call, as a service's thread sleeps
/// between calls that come through a gateway: the caches and the CPU then cool down as they do
/// in the service, which back-to-back calls hide.
public enum SearchMicroBenchmark {
    public struct Query: Sendable {
        public var name: String
        public var text: String
        public var category: String

        public init(name: String, text: String, category: String) {
            self.name = name
            self.text = text
            self.category = category
        }
    }

    /// Imports `bundle` into a catalog under `home`, then times `rounds` uncached searches of
    /// each query (after `warmup` untimed ones). Per query: every call's duration in nanoseconds.
    public static func run(home: String, bundle: String, queries: [Query], rounds: Int, warmup: Int = 200) async throws -> [String: [UInt64]] {
        var environment = ProcessInfo.processInfo.environment
        environment["MARKETPLACE_CACHE_TTL"] = "0"
        let catalog = try await Catalog(configuration: MarketplaceConfiguration(home: home, environment: environment))
        let imported = try await catalog.importItems(try await ImportSource.load(at: bundle))
        guard imported.failed == 0 else {
            throw Failure(message: "the bundle did not import cleanly: \(imported.failed) failed: \(imported.errors.prefix(3).map(\.message))")
        }
        var samples: [String: [UInt64]] = [:]
        for query in queries {
            let request = SearchRequest(query: query.text, category: query.category, bypassCache: true)
            for _ in 0..<warmup { _ = try catalog.encodedSearch(request) }
            var times = [UInt64](repeating: 0, count: rounds)
            let pause = UInt32(ProcessInfo.processInfo.environment["ATOM_BENCH_SEARCH_PAUSE_US"] ?? "") ?? 0
            for round in 0..<rounds {
                if pause > 0 { usleep(pause) }
                let started = ContinuousClock.now
                _ = try catalog.encodedSearch(request)
                times[round] = UInt64((ContinuousClock.now - started) / .nanoseconds(1))
            }
            samples[query.name] = times
        }
        return samples
    }

    struct Failure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}
