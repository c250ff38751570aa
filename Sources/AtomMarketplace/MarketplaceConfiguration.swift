public import AtomRPC
internal import Foundation

/// The marketplace's settings, read once at start (environment, then the config file).
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `ATOM_HOME` | `~/.atom` | the catalog lives in `$ATOM_HOME/marketplace/catalog.sqlite` |
/// | `MARKETPLACE_CACHE_TTL` | `300` | seconds search results stay cached (0 disables the cache); every write invalidates it |
/// | `MARKETPLACE_SEED_PATH` | unset | skills imported at start (a folder of skill folders or a bundle); `atom up` sets it to the bundled `skills/` |
/// | `MARKETPLACE_IMPORT_CHUNK` | `1000` | items per import transaction |
/// | `MARKETPLACE_INSTALL_TIMEOUT_S` | `900` | longest an InstallSkill waits for the installer (less when the caller's deadline is sooner) |
public struct MarketplaceConfiguration: ServiceSettings, Sendable {
    public var home: String
    public var cacheTTL: Duration
    public var seedPath: String?
    public var importChunk: Int
    public var installTimeout: Duration

    public var databasePath: String { "\(home)/marketplace/catalog.sqlite" }

    /// An invalid setting (names the variable and what it accepts).
    public typealias Invalid = AtomEnvironment.InvalidSetting

    public init(home: String, environment: [String: String]) throws {
        self.home = home
        cacheTTL = .seconds(try Self.integer(environment, "MARKETPLACE_CACHE_TTL", default: 300, range: 0...86_400))
        seedPath = environment["MARKETPLACE_SEED_PATH"].flatMap { $0.isEmpty ? nil : $0 }
        importChunk = try Self.integer(environment, "MARKETPLACE_IMPORT_CHUNK", default: 1_000, range: 1...100_000)
        installTimeout = .seconds(try Self.integer(environment, "MARKETPLACE_INSTALL_TIMEOUT_S", default: 900, range: 1...86_400))
    }

    public init(home: String, cacheTTL: Duration = .seconds(300), seedPath: String? = nil, importChunk: Int = 1_000, installTimeout: Duration = .seconds(900)) {
        self.home = home
        self.cacheTTL = cacheTTL
        self.seedPath = seedPath
        self.importChunk = importChunk
        self.installTimeout = installTimeout
    }

}
