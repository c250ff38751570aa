import AtomInstaller
import AtomProto
import AtomRPC
import AtomTesting
import Foundation
import Testing

/// The store against real uv and npm, offline: a wheelhouse and tarballs made by the test.
@Suite("Environment store (real uv, offline)", .serialized, .timeLimit(.minutes(5)))
struct EnvironmentStoreTests {
    struct Fixture {
        let scratch: ScratchDirectory
        let wheelhouse: String
        let store: EnvironmentStore

        init(environment: [String: String] = [:]) throws {
            scratch = try ScratchDirectory("installer")
            wheelhouse = scratch.path + "/wheels"
            try InstallerFixtures.makeWheelhouse(at: wheelhouse)
            store = try EnvironmentStore(configuration: try InstallerConfiguration(home: scratch.path + "/home", environment: environment))
        }

        var envs: String { scratch.path + "/home/envs" }

        func request(_ packages: [String], skill: String = "skill-a", type: PackageType = .python, options: InstallOptions? = nil) throws -> ValidatedInstall {
            let options = options ?? InstallOptions(findLinks: [wheelhouse], offline: true)
            return try RequestValidation.install(InstallRequest(skillId: skill, packages: packages, packageType: type, agentId: "agent-7", options: options))
        }

        func install(_ packages: [String], skill: String = "skill-a", force: Bool = false) async throws -> InstallResult {
            try await store.install(try request(packages, skill: skill, options: InstallOptions(findLinks: [wheelhouse], offline: true, force: force))) { _, _, _ in }
        }

        /// Entries of envs/ other than finished environments (once the old environments forced
        /// rebuilds moved aside have been deleted).
        func leftovers() async -> [String] {
            await store.settle()
            return ((try? FileManager.default.contentsOfDirectory(atPath: envs)) ?? []).filter {
                $0.hasPrefix(".") || !FileManager.default.fileExists(atPath: "\(envs)/\($0)/.atom-ready")
            }
        }
    }

    @Test("installs from the wheelhouse, verifies, and serves the same set from the cache")
    func installAndCache() async throws {
        let fixture = try Fixture()
        defer { fixture.scratch.remove() }
        let first = try await fixture.install(["beta==1.0"])
        #expect(first.success, "\(first.error)")
        #expect(!first.cached)
        #expect(first.locked.map { "\($0.name)==\($0.version)" }.sorted() == ["alpha==1.1", "beta==1.0"])
        #expect(first.environmentId.count == 64)
        let env = "\(fixture.envs)/\(first.environmentId)"
        #expect(FileManager.default.fileExists(atPath: "\(env)/.atom-ready"))
        let sitePackages = try #require(try FileManager.default.contentsOfDirectory(atPath: "\(env)/venv/lib").first)
        #expect(FileManager.default.fileExists(atPath: "\(env)/venv/lib/\(sitePackages)/site-packages/alpha/__init__.py"))

        // Another spelling of the same set, from another skill: the same environment, cached.
        let second = try await fixture.install(["BETA == 1.0"], skill: "skill-b")
        #expect(second.success && second.cached)
        #expect(second.environmentId == first.environmentId)
        // A changed set: a new environment (the reference system served the stale one).
        let changed = try await fixture.install(["beta==1.0", "delta"])
        #expect(changed.success && !changed.cached)
        #expect(changed.environmentId != first.environmentId)
        #expect(await fixture.store.buildsStarted == 2)
        #expect(await fixture.leftovers().isEmpty)
        // The skill binding records the environment and limits.
        let binding = try String(contentsOfFile: fixture.scratch.path + "/home/skills/skill-a.json", encoding: .utf8)
        #expect(binding.contains(changed.environmentId))

        // The cache survives a restart: a new store on the same home.
        let restarted = try EnvironmentStore(configuration: try InstallerConfiguration(home: fixture.scratch.path + "/home", environment: [:]))
        let again = try await restarted.install(try fixture.request(["beta==1.0"])) { _, _, _ in }
        #expect(again.cached && again.environmentId == first.environmentId)
        let listed = await restarted.list()
        #expect(Set(listed.map(\.environmentId)) == [first.environmentId, changed.environmentId])
    }

    @Test("a transitive conflict fails (never success) and leaves nothing behind")
    func transitiveConflict() async throws {
        let fixture = try Fixture()
        defer { fixture.scratch.remove() }
        let result = try await fixture.install(["beta", "gamma"])
        #expect(!result.success)
        #expect(result.environmentId.isEmpty)
        #expect(!result.conflicts.isEmpty)
        #expect(result.error.contains("alpha"), "\(result.error)")
        #expect(await fixture.leftovers().isEmpty)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: fixture.envs))?.isEmpty ?? true)
    }

    @Test("a direct conflict is found without running the resolver")
    func directConflict() async throws {
        let fixture = try Fixture()
        defer { fixture.scratch.remove() }
        let result = try await fixture.install(["Alpha==1.0", "alpha==1.1"])
        #expect(!result.success)
        #expect(result.conflicts.first?.requirements == ["Alpha==1.0", "alpha==1.1"])
        #expect(await fixture.store.buildsStarted == 0)
    }

    @Test("a package that is not in the wheelhouse fails cleanly")
    func missingPackage() async throws {
        let fixture = try Fixture()
        defer { fixture.scratch.remove() }
        let result = try await fixture.install(["no-such-package==1.0"])
        #expect(!result.success && !result.error.isEmpty)
        #expect(await fixture.leftovers().isEmpty)
    }

    @Test("identical concurrent requests coalesce into one build")
    func coalesce() async throws {
        let fixture = try Fixture()
        defer { fixture.scratch.remove() }
        let results = try await withThrowingTaskGroup(of: InstallResult.self) { group in
            for index in 0..<6 { group.addTask { try await fixture.install(["beta==1.0"], skill: "skill-\(index)") } }
            var all: [InstallResult] = []
            for try await result in group { all.append(result) }
            return all
        }
        #expect(results.allSatisfy { $0.success })
        #expect(Set(results.map(\.environmentId)).count == 1)
        #expect(await fixture.store.buildsStarted == 1)
    }

    @Test("different builds respect MAX_CONCURRENT_INSTALLATIONS")
    func concurrencyLimit() async throws {
        let fixture = try Fixture(environment: ["MAX_CONCURRENT_INSTALLATIONS": "1"])
        defer { fixture.scratch.remove() }
        let sets = [["alpha==1.0"], ["alpha==1.1"], ["alpha==2.0"], ["delta"]]
        let results = try await withThrowingTaskGroup(of: InstallResult.self) { group in
            for set in sets { group.addTask { try await fixture.install(set) } }
            var all: [InstallResult] = []
            for try await result in group { all.append(result) }
            return all
        }
        #expect(results.allSatisfy { $0.success })
        #expect(Set(results.map(\.environmentId)).count == 4)
        #expect(await fixture.store.peakConcurrentBuilds == 1)
        #expect(await fixture.store.buildsStarted == 4)
    }

    @Test("ENV_CACHE_ENABLED=false and force rebuild")
    func cacheDisabled() async throws {
        let fixture = try Fixture(environment: ["ENV_CACHE_ENABLED": "false"])
        defer { fixture.scratch.remove() }
        let first = try await fixture.install(["delta"])
        let second = try await fixture.install(["delta"])
        #expect(first.success && second.success && !first.cached && !second.cached)
        #expect(first.environmentId == second.environmentId)
        #expect(await fixture.store.buildsStarted == 2)
        #expect(await fixture.leftovers().isEmpty)

        let cached = try Fixture()
        defer { cached.scratch.remove() }
        _ = try await cached.install(["delta"])
        let forced = try await cached.install(["delta"], force: true)
        #expect(forced.success && !forced.cached)
        #expect(await cached.store.buildsStarted == 2)
        // The environment the forced rebuild replaced is deleted in the background: nothing is
        // left once that is done (and the scratch directory is not removed under it).
        #expect(await cached.leftovers().isEmpty)
    }

    @Test("successive builds run in the same build slot, so uv asks the interpreter about it once")
    func buildSlotReused() async throws {
        let fixture = try Fixture()
        defer { fixture.scratch.remove() }
        // uv stores what it learns about an interpreter per path (`interpreter-v*` in its cache).
        func interpreterEntries() -> [String] {
            let cache = fixture.scratch.path + "/home/cache/uv"
            let buckets = ((try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? []).filter { $0.hasPrefix("interpreter") }
            return buckets.flatMap { bucket in
                (FileManager.default.enumerator(atPath: "\(cache)/\(bucket)")?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".msgpack") }
            }
        }
        var ids: [String] = []
        for _ in 0..<3 {
            let result = try await fixture.install(["beta==1.0"], force: true)
            #expect(result.success && !result.cached, "\(result.error)")
            ids.append(result.environmentId)
        }
        #expect(Set(ids).count == 1)
        #expect(await fixture.store.buildsStarted == 3)
        // The base interpreter (the resolver's) and the slot's venv: not one more per build.
        #expect(interpreterEntries().count == 2, "\(interpreterEntries())")
        let left = await fixture.leftovers()
        #expect(left.isEmpty, "\(left)")
        // The environment works after its rename out of the slot.
        let python = "\(fixture.envs)/\(ids[0])/venv/bin/python"
        let run = Process()
        run.executableURL = URL(fileURLWithPath: python)
        run.arguments = ["-c", "import alpha, beta, sys; assert sys.prefix.endswith('/venv'), sys.prefix"]
        try run.run()
        run.waitUntilExit()
        #expect(run.terminationStatus == 0)
    }

    @Test("leftovers of a crash are never served and are cleaned up")
    func crashLeftovers() async throws {
        let fixture = try Fixture()
        defer { fixture.scratch.remove() }
        let result = try await fixture.install(["delta"])
        let env = "\(fixture.envs)/\(result.environmentId)"
        // A crash between rename and marker: the environment is not valid and gets rebuilt.
        try FileManager.default.removeItem(atPath: "\(env)/.atom-ready")
        let rebuilt = try await fixture.install(["delta"])
        #expect(rebuilt.success && !rebuilt.cached)
        #expect(FileManager.default.fileExists(atPath: "\(env)/.atom-ready"))
        // An old half-built directory is removed at start.
        let stale = "\(fixture.envs)/.tmp-deadbeef-crash"
        try FileManager.default.createDirectory(atPath: stale + "/venv", withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -86_400)], ofItemAtPath: stale)
        _ = try EnvironmentStore(configuration: try InstallerConfiguration(home: fixture.scratch.path + "/home", environment: [:]))
        #expect(!FileManager.default.fileExists(atPath: stale))
    }

    @Test("the resolution is cached: a repeated request is a lookup")
    func resolutionCache() async throws {
        let fixture = try Fixture()
        defer { fixture.scratch.remove() }
        _ = try await fixture.install(["beta==1.0"])
        let hit = try await fixture.install(["beta==1.0"])
        // How fast is `atom bench install`'s business (install_cached_env_hit), not a test's.
        #expect(hit.cached)
    }

    @Test("policy: deny list, allow list, scanner failing closed; every decision audited")
    func policy() async throws {
        let denied = try Fixture(environment: ["ATOM_INSTALLER_DENY": "Delta"])
        defer { denied.scratch.remove() }
        let refused = try await denied.install(["delta"])
        #expect(!refused.success && refused.error.contains("deny list"))
        let allowed = try Fixture(environment: ["ATOM_INSTALLER_ALLOW": "alpha"])
        defer { allowed.scratch.remove() }
        #expect(try await allowed.install(["alpha==1.0"]).success)
        #expect(!(try await allowed.install(["delta"]).success))

        for (scanner, passes) in [("true", true), ("false", false), ("/nonexistent/scanner", false)] {
            let scanned = try Fixture(environment: ["ATOM_INSTALLER_SCANNER": scanner])
            defer { scanned.scratch.remove() }
            let result = try await scanned.install(["delta"])
            #expect(result.success == passes, "scanner \(scanner): \(result.error)")
            if !passes { #expect(await scanned.leftovers().isEmpty && result.environmentId.isEmpty) }
        }

        let entries = try AuditLog(path: allowed.scratch.path + "/home/installer/audit.sqlite").recent()
        #expect(entries.contains { $0.decision == "refused" && $0.packages == "delta" && $0.agentID == "agent-7" })
        #expect(entries.contains { $0.decision == "installed" && $0.packages == "alpha==1.0" })
    }

    @Test("an unreachable index is UNAVAILABLE carrying uv's message")
    func unreachableIndex() async throws {
        let fixture = try Fixture(environment: [:])
        defer { fixture.scratch.remove() }
        let request = try fixture.request(["delta"], options: InstallOptions(indexUrl: "http://127.0.0.1:9/simple"))
        do {
            let result = try await fixture.store.install(request) { _, _, _ in }
            Issue.record("expected UNAVAILABLE, got \(result)")
        } catch let error as RPCError {
            #expect(error.code == .unavailable, "\(error)")
            #expect(error.message.contains("127.0.0.1"), "\(error.message)")
        }
        #expect(await fixture.leftovers().isEmpty)
    }

    @Test("npm: local tarballs from npm pack, resolved by range, installed with a lockfile")
    func npm() async throws {
        let fixture = try Fixture()
        defer { fixture.scratch.remove() }
        let tarballs = fixture.scratch.path + "/tarballs"
        try InstallerFixtures.makeNpmTarballs(at: tarballs)
        let options = InstallOptions(findLinks: [tarballs], offline: true)
        let request = try fixture.request(["tiny-lib@^1"], type: .npm, options: options)
        let result = try await fixture.store.install(request) { _, _, _ in }
        #expect(result.success, "\(result.error)")
        #expect(result.locked.map { "\($0.name)@\($0.version)" } == ["tiny-lib@1.1.0"])
        let env = "\(fixture.envs)/\(result.environmentId)"
        #expect(FileManager.default.fileExists(atPath: "\(env)/package-lock.json"))
        #expect(FileManager.default.fileExists(atPath: "\(env)/node_modules/tiny-lib/index.js"))
        let again = try await fixture.store.install(try fixture.request(["tiny-lib@1.x"], type: .npm, options: options)) { _, _, _ in }
        #expect(again.cached && again.environmentId == result.environmentId)
        let none = try await fixture.store.install(try fixture.request(["tiny-lib@^3"], type: .npm, options: options)) { _, _, _ in }
        #expect(!none.success && none.error.contains("tiny-lib"))
        #expect(await fixture.leftovers().isEmpty)
    }
    @Test("gc removes environments unused for a period, then LRU over a size cap; never one in use")
    func garbageCollection() async throws {
        let fixture = try Fixture()
        defer { fixture.scratch.remove() }
        let old = try await fixture.install(["alpha==1.0"])
        let older = try await fixture.install(["alpha==1.1"])
        let recent = try await fixture.install(["delta"])
        #expect(old.success && older.success && recent.success)
        func age(_ id: String, days: Double) throws {
            try FileManager.default.setAttributes(
                [.modificationDate: Date(timeIntervalSinceNow: -days * 86_400)], ofItemAtPath: "\(fixture.envs)/\(id)/.atom-ready")
        }
        try age(old.environmentId, days: 10)
        try age(older.environmentId, days: 20)
        try age(recent.environmentId, days: 1)
        // All three were served a moment ago by this store: in use, nothing goes.
        let busy = await fixture.store.collectGarbage(unusedFor: .seconds(86_400 * 5), maxBytes: 1, dryRun: false)
        #expect(busy.removed.isEmpty && busy.kept == 3)

        // A restarted store knows only the markers' times.
        let store = try EnvironmentStore(configuration: try InstallerConfiguration(home: fixture.scratch.path + "/home", environment: [:]))
        let dry = await store.collectGarbage(unusedFor: .seconds(86_400 * 5), maxBytes: nil, dryRun: true)
        #expect(dry.removed == [older.environmentId, old.environmentId])
        #expect(FileManager.default.fileExists(atPath: "\(fixture.envs)/\(old.environmentId)/.atom-ready"))
        let aged = await store.collectGarbage(unusedFor: .seconds(86_400 * 5), maxBytes: nil, dryRun: false)
        #expect(aged.removed == [older.environmentId, old.environmentId] && aged.kept == 1 && aged.freedBytes > 0)
        #expect(!FileManager.default.fileExists(atPath: "\(fixture.envs)/\(old.environmentId)"))
        #expect(await fixture.leftovers().isEmpty)
        // A removed environment is rebuilt on the next request, not served from a stale hit.
        let again = try await store.install(try fixture.request(["alpha==1.0"])) { _, _, _ in }
        #expect(again.success && !again.cached)
        // Over a cap of 1 byte, the least recently used that is not in use goes.
        let capped = await store.collectGarbage(unusedFor: nil, maxBytes: 1, dryRun: false)
        #expect(capped.removed == [recent.environmentId])
        #expect(FileManager.default.fileExists(atPath: "\(fixture.envs)/\(again.environmentId)/.atom-ready"))
    }
}
