import AtomInstaller
import AtomRPC
import Foundation

// Settings: see InstallerConfiguration (MAX_CONCURRENT_INSTALLATIONS, ENV_CACHE_ENABLED, ...).
let service: InstallerServiceImpl
do {
    let environment = try AtomEnvironment()
    // Before the store makes its logger, so that ATOM_LOG_LEVEL applies to it (debug: where
    // each build's time goes).
    ServiceMain.bootstrapLogging(level: environment.logLevel)
    service = try InstallerServiceImpl(home: environment.home)
} catch {
    FileHandle.standardError.write(Data("atom-installer: \(error)\n".utf8))
    exit(2)
}
// The interpreter probe and the uv lookup run once, now, rather than inside the first install.
let store = service.store
Task { await store.warmUp() }
await ServiceMain.run(service, label: "atom-installer")
