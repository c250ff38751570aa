@testable import AtomInstaller
import AtomProto
import AtomRPC
import AtomTesting
import Foundation
import Testing

@Suite("Build slots (stable build paths)")
struct BuildSlotTests {
    @Test("a slot is one build's at a time, also across stores on the same home; a lease clears leftovers")
    func leases() throws {
        let scratch = try ScratchDirectory("slots")
        defer { scratch.remove() }
        let envs = scratch.path + "/envs", locks = scratch.path + "/installer"
        for directory in [envs, locks] { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        // Two pools on the same folders: two installers (or two stores) on one home.
        let one = BuildSlots(envs: envs, locks: locks), other = BuildSlots(envs: envs, locks: locks)

        let first = try one.lease()
        #expect(first.path == envs + "/.build-0")
        let second = try one.lease()
        #expect(second.path == envs + "/.build-1")
        // The other pool cannot take slot 0 or 1 while they are held (flock), so it takes 2.
        let third = try other.lease()
        #expect(third.path == envs + "/.build-2")
        #expect(!one.isIdle(0) && !other.isIdle(2))

        // A build that died left files in its slot: the next lease starts from an empty folder.
        try FileManager.default.createDirectory(atPath: first.path + "/venv/lib", withIntermediateDirectories: true)
        first.release()
        first.release()  // idempotent
        #expect(one.isIdle(0))
        let again = try other.lease()
        #expect(again.path == envs + "/.build-0")
        #expect(!FileManager.default.fileExists(atPath: again.path))
        for slot in [second, third, again] { slot.release() }
        #expect((0..<3).allSatisfy { one.isIdle($0) })
    }

    @Test("a start-up clean-up removes an idle slot's folder and leaves a held one alone")
    func startupCleanup() throws {
        let scratch = try ScratchDirectory("slots-start")
        defer { scratch.remove() }
        let home = scratch.path + "/home"
        let configuration = try InstallerConfiguration(home: home, environment: [:])
        _ = try EnvironmentStore(configuration: configuration)
        let pool = BuildSlots(envs: configuration.envsDirectory, locks: home + "/installer")
        let held = try pool.lease()
        try FileManager.default.createDirectory(atPath: held.path + "/venv", withIntermediateDirectories: true)
        let abandoned = configuration.envsDirectory + "/.build-7"
        try FileManager.default.createDirectory(atPath: abandoned + "/venv", withIntermediateDirectories: true)

        _ = try EnvironmentStore(configuration: configuration)
        #expect(!FileManager.default.fileExists(atPath: abandoned))
        #expect(FileManager.default.fileExists(atPath: held.path + "/venv"))
        held.release()
    }
}
