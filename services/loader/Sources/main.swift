import AtomLoader
import AtomRPC
import Foundation
import Logging

// Settings: see LoaderConfiguration (SKILLS_DIRS, SKILL_HOT_RELOAD_ENABLED, LOADER_CACHE_SIZE, ...).
let service: LoaderServiceImpl
do {
    let environment = try AtomEnvironment()
    ServiceMain.bootstrapLogging(level: environment.logLevel)
    service = try LoaderServiceImpl.make(environment: environment, logger: Logger(label: "atom-loader"))
} catch {
    FileHandle.standardError.write(Data("atom-loader: \(error)\n".utf8))
    exit(2)
}
let loader = service.loader
await ServiceMain.run(
    service, label: "atom-loader",
    // Handlers never block (host I/O has threads of its own, folder reads a Dispatch queue):
    // they run on the reactor thread, so a call costs no thread hop.
    handlerExecution: .reactorThread,
    willServe: { server in await loader.start(metrics: server.metrics) },
    didStop: { await loader.shutdown() })
