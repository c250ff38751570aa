public import AtomCLI
internal import Foundation

/// Offline package sources for installer tests: a wheelhouse of tiny pure-Python packages
/// (several versions, a dependency, a deliberate transitive conflict) and npm tarballs made
/// with `npm pack`. Nothing touches the network.
public enum InstallerFixtures {
    /// The packages in the wheelhouse:
    /// - `alpha` 1.0, 1.1, 2.0
    /// - `beta` 1.0 (needs `alpha>=1.0,<2`)
    /// - `gamma` 1.0 (needs `alpha>=2`): `beta` + `gamma` is a transitive conflict
    /// - `delta` 0.5 (no dependencies)
    public static let wheels = [
        "alpha==1.0", "alpha==1.1", "alpha==2.0", "beta==1.0;alpha>=1.0,<2", "gamma==1.0;alpha>=2", "delta==0.5",
    ]

    /// Builds the wheels with Python's zipfile (a wheel is a zip with metadata: no setuptools,
    /// no build backend, no network) into `directory`.
    public static func makeWheelhouse(at directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let script = "\(directory)/.make_wheels.py"
        try wheelScript.write(toFile: script, atomically: true, encoding: .utf8)
        try run("/usr/bin/env", ["python3", script, directory] + wheels)
        try FileManager.default.removeItem(atPath: script)
    }

    /// Packs `tiny-lib` 1.0.0, 1.1.0 and 2.0.0 (no dependencies) with `npm pack` into `directory`.
    public static func makeNpmTarballs(at directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for version in ["1.0.0", "1.1.0", "2.0.0"] {
            let source = "\(directory)/.src-\(version)"
            try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
            try #"{"name": "tiny-lib", "version": "\#(version)", "main": "index.js"}"#.write(toFile: "\(source)/package.json", atomically: true, encoding: .utf8)
            try "module.exports = '\(version)';\n".write(toFile: "\(source)/index.js", atomically: true, encoding: .utf8)
            try run("/usr/bin/env", ["npm", "pack", "--silent", "--pack-destination", directory], directory: source)
            try FileManager.default.removeItem(atPath: source)
        }
    }

    public struct CommandFailed: Error, CustomStringConvertible {
        public let description: String
    }

    static func run(_ executable: String, _ arguments: [String], directory: String? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("atom-fixture-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? FileManager.default.removeItem(at: log) }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        guard process.terminationStatus == 0 else {
            let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw CommandFailed(description: "\(arguments.joined(separator: " ")) failed: \(output)")
        }
    }

    static let wheelScript = #"""
        import base64, hashlib, os, sys, zipfile

        def wheel(out, name, version, requires):
            module = name.replace("-", "_")
            dist = f"{module}-{version}"
            files = {
                f"{module}/__init__.py": f"__version__ = '{version}'\n",
                f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                + "".join(f"Requires-Dist: {r}\n" for r in requires),
                f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: atom-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            }
            record = []
            for path, content in files.items():
                digest = base64.urlsafe_b64encode(hashlib.sha256(content.encode()).digest()).rstrip(b"=").decode()
                record.append(f"{path},sha256={digest},{len(content.encode())}")
            record.append(f"{dist}.dist-info/RECORD,,")
            files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
            with zipfile.ZipFile(os.path.join(out, f"{dist}-py3-none-any.whl"), "w") as archive:
                for path, content in files.items():
                    archive.writestr(zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0)), content)

        out = sys.argv[1]
        for spec in sys.argv[2:]:
            parts = spec.split(";")
            name, version = parts[0].split("==")
            wheel(out, name, version, [p for p in parts[1:] if p])
        """#
}

extension LocalStack {
    /// Starts `atom-installer` with extra settings (MAX_CONCURRENT_INSTALLATIONS, ...).
    @discardableResult
    public func startInstaller(instanceID: String = "installer-1", environment: [String: String] = [:]) throws -> ManagedProcess {
        var variables = environment
        variables["ATOM_INSTANCE_ID"] = instanceID
        return try start("atom-installer", name: instanceID, environment: variables)
    }
}

/// A scratch directory removed when the test ends (call `remove()` in a defer).
public struct ScratchDirectory: Sendable {
    public let path: String

    public init(_ label: String) throws {
        path = NSTemporaryDirectory() + "atom-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Removes the directory. A store's background deletion (`TrashCan`) may still be walking a
    /// folder inside it: the two walks race, the first removal can fail half-way, and an empty
    /// `home/envs` was seen left in /tmp. So it tries again until the directory is gone (up to a
    /// second).
    public func remove() {
        for _ in 0..<20 {
            try? FileManager.default.removeItem(atPath: path)
            guard FileManager.default.fileExists(atPath: path) else { return }
            usleep(50_000)
        }
    }
}
