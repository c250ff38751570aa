import AtomMarketplace
import AtomRPC
import Foundation

// `atom-marketplace bench-search HOME BUNDLE QUERIES ROUNDS`: the per-call cost of the search
// code in this process (SearchMicroBenchmark), for `atom bench marketplace`. QUERIES is the
// benchmark's queries file; prints {"shape": [nanoseconds, ...], ...} as one JSON line.
if CommandLine.arguments.count == 6, CommandLine.arguments[1] == "bench-search" {
    let arguments = CommandLine.arguments
    do {
        guard let rounds = Int(arguments[5]), rounds > 0,
              let file = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: arguments[4]))) as? [String: Any],
              let shapes = file["queries"] as? [String: [String: Any]]
        else {
            FileHandle.standardError.write(Data("atom-marketplace bench-search: give HOME BUNDLE QUERIES-FILE ROUNDS (a positive number)\n".utf8))
            exit(2)
        }
        let queries = shapes.keys.sorted().map { name in
            SearchMicroBenchmark.Query(
                name: name, text: shapes[name]?["query"] as? String ?? "", category: shapes[name]?["category"] as? String ?? "")
        }
        let samples = try await SearchMicroBenchmark.run(home: arguments[2], bundle: arguments[3], queries: queries, rounds: rounds)
        let line = try JSONSerialization.data(withJSONObject: samples.mapValues { $0.map { NSNumber(value: $0) } })
        FileHandle.standardOutput.write(line + Data("\n".utf8))
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("atom-marketplace bench-search: \(error)\n".utf8))
        exit(1)
    }
}

// Settings: see MarketplaceConfiguration (MARKETPLACE_CACHE_TTL, MARKETPLACE_SEED_PATH, ...).
let service: MarketplaceServiceImpl
do {
    let environment = try AtomEnvironment()
    let configuration = try MarketplaceConfiguration.resolve(home: environment.home)
    let catalog = try await Catalog(configuration: configuration)
    if let seed = configuration.seedPath {
        // The bundled catalog: importing the same versions again changes nothing.
        let result = try await catalog.importItems(try await ImportSource.load(at: seed))
        FileHandle.standardError.write(Data(
            "atom-marketplace: seeded from \(seed): \(result.added) added, \(result.updated) updated, \(result.unchanged) unchanged, \(result.failed) failed\n".utf8))
        for error in result.errors {
            FileHandle.standardError.write(Data("atom-marketplace: seed item \(error.item): \(error.field.isEmpty ? "" : error.field + ": ")\(error.message)\n".utf8))
        }
    }
    let gateway = try RPCClient(environment: environment, name: "atom-marketplace")
    service = MarketplaceServiceImpl(catalog: catalog, gateway: gateway)
} catch let failure as ImportFailure {
    FileHandle.standardError.write(Data("atom-marketplace: MARKETPLACE_SEED_PATH: \(failure.message)\n".utf8))
    exit(2)
} catch {
    FileHandle.standardError.write(Data("atom-marketplace: \(error)\n".utf8))
    exit(2)
}
// Handlers start on the reactor thread (no thread hop): a cached search is answered there;
// searches that miss and every other method move to the shared pool (MarketplaceServiceImpl).
await ServiceMain.run(service, label: "atom-marketplace", handlerExecution: .reactorThread)
