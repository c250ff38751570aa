import AtomInstaller
import AtomRPC
import Foundation

// Settings: see InstallerConfiguration (MAX_CONCURRENT_INSTALLATIONS, ENV_CACHE_ENABLED, ...).
let service: InstallerServiceImpl
do {
    service = try InstallerServiceImpl(home: try AtomEnvironment().home)
} catch {
    FileHandle.standardError.write(Data("atom-installer: \(error)\n".utf8))
    exit(2)
}
await ServiceMain.run(service, label: "atom-installer")
