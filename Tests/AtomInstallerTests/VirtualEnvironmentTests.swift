@testable import AtomInstaller
import AtomProto
import AtomRPC
import AtomTesting
import Foundation
import Testing

/// The virtual environment the installer writes itself (PEP 405) instead of running `uv venv`,
/// and the uv binary it runs instead of a wrapper script; against the real interpreter and uv.
@Suite("Virtual environments written in Swift, uv resolution", .serialized, .timeLimit(.minutes(3)))
struct VirtualEnvironmentTests {
    /// Runs a program to completion; its status and stdout.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessOutcome {
        try await Subprocess.run(executable, arguments, environment: environment, timeout: .seconds(120))
    }

    static func store(_ scratch: ScratchDirectory, _ environment: [String: String] = [:], resolveUVWrapper: Bool? = nil) throws -> EnvironmentStore {
        var configuration = try InstallerConfiguration(home: scratch.path + "/home", environment: environment)
        if let resolveUVWrapper { configuration.resolveUVWrapper = resolveUVWrapper }
        return try EnvironmentStore(configuration: configuration)
    }

    @Test("the interpreter probe yields a layout, and the written venv is a venv to Python")
    func writtenVenvIsAVenv() async throws {
        let scratch = try ScratchDirectory("venv")
        defer { scratch.remove() }
        let store = try Self.store(scratch)
        let runtime = try await store.runtime(for: .python)
        let layout = try #require(runtime.venvLayout, "a CPython on Linux must get a Swift-written venv")
        #expect(layout.sitePackages.allSatisfy { $0.hasPrefix("lib/python\(layout.shortVersion)") && $0.hasSuffix("site-packages") })

        let venv = scratch.path + "/scratch-build/venv"
        try layout.create(at: venv)
        let config = try String(contentsOfFile: "\(venv)/pyvenv.cfg", encoding: .utf8)
        #expect(config.contains("include-system-site-packages = false"))
        #expect(config.contains("relocatable = true"))
        #expect(config.contains("home = \((layout.baseExecutable as NSString).deletingLastPathComponent)"))

        let probe = "import sys, site; print(sys.prefix); print(sys.base_prefix); print(sys.prefix != sys.base_prefix); print(site.getsitepackages()[0])"
        let seen = try await Self.run("\(venv)/bin/python", ["-c", probe])
        #expect(seen.succeeded, "\(seen.tail)")
        let lines = seen.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines.first.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().path } == URL(fileURLWithPath: venv).resolvingSymlinksInPath().path)
        #expect(lines.dropFirst(2).first == "True")
        #expect(lines.last?.hasSuffix("/venv/\(layout.sitePackages[0])") == true, "\(lines)")
        // The aliases uv and python -m venv create.
        for alias in ["python3", "python\(layout.shortVersion)"] {
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "\(venv)/bin/\(alias)") == "python")
        }
        // An existing path is refused, never overwritten.
        #expect(throws: InstallFailure.self) { try layout.create(at: venv) }
    }

    @Test("uv installs into the written venv, and it still works after the rename into place")
    func uvInstallsIntoItAndItMoves() async throws {
        let scratch = try ScratchDirectory("venv-uv")
        defer { scratch.remove() }
        let wheelhouse = scratch.path + "/wheels"
        try InstallerFixtures.makeWheelhouse(at: wheelhouse)
        let store = try Self.store(scratch)
        let layout = try #require(try await store.runtime(for: .python).venvLayout)
        let uv = try await store.uvPath()
        let building = scratch.path + "/.tmp-build"
        try layout.create(at: "\(building)/venv")
        let installed = try await Self.run(
            uv, ["pip", "install", "--python", "\(building)/venv/bin/python", "--offline", "--no-index", "--find-links", wheelhouse, "--quiet", "beta==1.0"],
            environment: await store.uvEnvironment)
        #expect(installed.succeeded, "\(installed.tail)")
        #expect(try EnvironmentStore.installedDistributions(venv: "\(building)/venv") == ["alpha": "1.1", "beta": "1.0"])

        let final = scratch.path + "/envs-final"
        #expect(rename(building, final) == 0)
        // As the loader starts it: isolated, no site, the site-packages named explicitly.
        let site = "\(final)/venv/\(layout.sitePackages[0])"
        let host = try await Self.run(
            "\(final)/venv/bin/python", ["-I", "-S", "-c", "import sys; sys.path.append(sys.argv[1]); import alpha, beta; print(alpha.__version__, alpha.__file__)", site])
        #expect(host.succeeded, "\(host.tail)")
        #expect(host.stdout.hasPrefix("1.1 \(site)/alpha/"), "\(host.stdout)")
        // And as a plain interpreter: the venv's site-packages is on the path by itself.
        let plain = try await Self.run("\(final)/venv/bin/python", ["-c", "import beta, sys; print(sys.prefix)"])
        #expect(plain.succeeded, "\(plain.tail)")
        #expect(plain.stdout.contains("envs-final/venv"), "\(plain.stdout)")
    }

    @Test("a build makes its venv without uv venv; the environment serves its packages")
    func storeBuildUsesTheWrittenVenv() async throws {
        let scratch = try ScratchDirectory("venv-store")
        defer { scratch.remove() }
        let wheelhouse = scratch.path + "/wheels"
        try InstallerFixtures.makeWheelhouse(at: wheelhouse)
        let store = try Self.store(scratch)
        let request = try RequestValidation.install(InstallRequest(
            skillId: "skill-v", packages: ["beta==1.0"], agentId: "agent-v", options: InstallOptions(findLinks: [wheelhouse], offline: true)))
        let result = try await store.install(request) { _, _, _ in }
        #expect(result.success, "\(result.error)")
        let venv = scratch.path + "/home/envs/\(result.environmentId)/venv"
        let config = try String(contentsOfFile: "\(venv)/pyvenv.cfg", encoding: .utf8)
        #expect(config.contains("atom-installer = 1"), "the venv was not written by the installer:\n\(config)")
        let imported = try await Self.run("\(venv)/bin/python", ["-c", "import alpha, beta; print(alpha.__version__)"])
        #expect(imported.succeeded && imported.stdout == "1.1\n", "\(imported.tail)")
    }

    @Test("interpreters the writer does not know fall back to uv venv")
    func unknownLayouts() throws {
        let python = try #require(Subprocess.which("python3"))
        #expect(VirtualEnvironmentLayout(implementation: "cpython", baseExecutable: python, versionInfo: "3.11.7", sitePackages: ["lib/python3.11/site-packages"]) != nil)
        #expect(VirtualEnvironmentLayout(implementation: "pypy", baseExecutable: python, versionInfo: "3.10.14", sitePackages: ["lib/pypy3.10/site-packages"]) == nil)
        #expect(VirtualEnvironmentLayout(implementation: "unsupported", baseExecutable: python, versionInfo: "3.11.7", sitePackages: ["lib/python3.11/site-packages"]) == nil)
        #expect(VirtualEnvironmentLayout(implementation: "cpython", baseExecutable: "/nonexistent/python3", versionInfo: "3.11.7", sitePackages: ["lib/python3.11/site-packages"]) == nil)
        #expect(VirtualEnvironmentLayout(implementation: "cpython", baseExecutable: python, versionInfo: "3.11.7", sitePackages: [""]) == nil)
        #expect(VirtualEnvironmentLayout(implementation: "cpython", baseExecutable: python, versionInfo: "3.11.7", sitePackages: ["../x/site-packages"]) == nil)
        #expect(VirtualEnvironmentLayout(implementation: "cpython", baseExecutable: python, versionInfo: "three", sitePackages: ["lib/python3.11/site-packages"]) == nil)
    }

    /// A uv binary (not a script): the one beside the interpreter or the first on PATH.
    static func uvBinary(beside python: String) -> String? {
        let folders = [(python as NSString).deletingLastPathComponent]
            + (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        return folders.map { "\($0)/uv" }.first { FileManager.default.isExecutableFile(atPath: $0) && !EnvironmentStore.isScript($0) }
    }

    @Test("a uv wrapper script is resolved to the uv binary beside the interpreter, only when the versions agree")
    func wrapperResolution() async throws {
        let scratch = try ScratchDirectory("uv-wrapper")
        defer { scratch.remove() }
        let realPython = try await Self.store(scratch).runtime(for: .python).executable
        let binary = try #require(Self.uvBinary(beside: realPython), "no uv binary found")
        // An interpreter folder of our own: python3 and uv, both links to the real ones.
        let bin = scratch.path + "/python-bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(bin)/python3", withDestinationPath: realPython)
        try FileManager.default.createSymbolicLink(atPath: "\(bin)/uv", withDestinationPath: binary)
        // A shim like pyenv's: a script that runs the binary.
        let wrapper = scratch.path + "/shims/uv"
        try FileManager.default.createDirectory(atPath: scratch.path + "/shims", withIntermediateDirectories: true)
        try "#!/bin/sh\nexec \"\(binary)\" \"$@\"\n".write(toFile: wrapper, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: wrapper)
        #expect(EnvironmentStore.isScript(wrapper) && !EnvironmentStore.isScript(binary))

        // As when ATOM_INSTALLER_UV is unset and `uv` on PATH is this wrapper.
        let resolving = try Self.store(scratch, ["ATOM_INSTALLER_PYTHON": "\(bin)/python3", "ATOM_INSTALLER_UV": wrapper], resolveUVWrapper: true)
        #expect(try await resolving.runtime(for: .python).executable == "\(bin)/python3")
        #expect(try await resolving.uvPath() == "\(bin)/uv")
        // A path in ATOM_INSTALLER_UV is an explicit choice: used as it is.
        #expect(try InstallerConfiguration(home: scratch.path, environment: ["ATOM_INSTALLER_UV": wrapper]).resolveUVWrapper == false)
        #expect(try InstallerConfiguration(home: scratch.path, environment: [:]).resolveUVWrapper == true)
        let explicit = try Self.store(scratch, ["ATOM_INSTALLER_PYTHON": "\(bin)/python3", "ATOM_INSTALLER_UV": wrapper])
        #expect(try await explicit.uvPath() == wrapper)

        // A wrapper that runs some other uv (another version): kept as configured.
        let other = scratch.path + "/other/uv"
        try FileManager.default.createDirectory(atPath: scratch.path + "/other", withIntermediateDirectories: true)
        try "#!/bin/sh\necho 'uv 0.0.1'\n".write(toFile: other, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: other)
        let keeping = try Self.store(scratch, ["ATOM_INSTALLER_PYTHON": "\(bin)/python3", "ATOM_INSTALLER_UV": other], resolveUVWrapper: true)
        #expect(try await keeping.uvPath() == other)

        // A binary is used as it is, and a missing uv is FAILED_PRECONDITION.
        let direct = try Self.store(scratch, ["ATOM_INSTALLER_UV": binary])
        #expect(try await direct.uvPath() == binary)
        let missing = try Self.store(scratch, ["ATOM_INSTALLER_UV": scratch.path + "/no-such-uv"])
        await #expect(throws: RPCError.self) { try await missing.uvPath() }
    }
}
