import AtomMarketplace
import AtomRPC
import Foundation

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
