internal import Foundation

/// Writes a PEP 405 virtual environment without starting a process: what `uv venv --relocatable`
/// writes that anything here reads, nothing more.
///
///     venv/pyvenv.cfg                     home, implementation, version_info,
///                                         include-system-site-packages = false, relocatable = true
///     venv/bin/python -> <base interpreter>
///     venv/bin/python3, venv/bin/python3.X -> python
///     venv/lib/python3.X/site-packages/   (the `venv` sysconfig scheme of the interpreter)
///     venv/lib64 -> lib                   (64-bit Linux, as uv and `python -m venv` do)
///
/// The interpreter finds `pyvenv.cfg` next to (or one level above) the executable it was started
/// as, takes its standard library from `home`, and its site-packages from the venv; uv recognises
/// the venv by `pyvenv.cfg` and, because of `relocatable = true`, writes entry-point scripts that
/// find their interpreter relative to themselves, so the environment still works after it is
/// renamed from its scratch folder into `envs/<id>`. Activation scripts are not written: nothing
/// here activates an environment (the loader starts `venv/bin/python` directly).
struct VirtualEnvironmentLayout: Sendable, Hashable {
    /// The base interpreter (`sys._base_executable`): `bin/python` points at it, `home` is its folder.
    let baseExecutable: String
    /// `3.11.7`.
    let versionInfo: String
    /// `3.11`.
    let shortVersion: String
    /// site-packages relative to the environment: `lib/python3.11/site-packages` (purelib, then
    /// platlib when it differs).
    let sitePackages: [String]

    /// The layout a CPython on a POSIX system reported (see `probeScript`), or nil when the
    /// interpreter is something this writer does not know (then `uv venv` makes the environment).
    init?(implementation: String, baseExecutable: String, versionInfo: String, sitePackages: [String]) {
        guard implementation == "cpython", baseExecutable.hasPrefix("/"),
              FileManager.default.isExecutableFile(atPath: baseExecutable)
        else { return nil }
        let parts = versionInfo.split(separator: ".")
        guard parts.count >= 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) else { return nil }
        let relative = sitePackages.filter { !$0.isEmpty }
        guard !relative.isEmpty,
              relative.allSatisfy({ !$0.hasPrefix("/") && !$0.split(separator: "/").contains("..") && $0.hasSuffix("site-packages") })
        else { return nil }
        self.baseExecutable = baseExecutable
        self.versionInfo = versionInfo
        shortVersion = "\(parts[0]).\(parts[1])"
        var unique: [String] = []
        for path in relative where !unique.contains(path) { unique.append(path) }
        self.sitePackages = unique
    }

    /// Python that prints, one per line: the implementation, `sys._base_executable`, the version
    /// and the purelib and platlib folders of the `venv` scheme relative to the environment.
    static let probeLines = [
        "import os, sys, sysconfig",
        "scheme = 'venv' if 'venv' in sysconfig.get_scheme_names() else 'posix_prefix'",
        "paths = sysconfig.get_paths(scheme, vars={'base': '/@V', 'platbase': '/@V', 'installed_base': '/@V', 'installed_platbase': '/@V'})",
        "print(sys.implementation.name if os.name == 'posix' else 'unsupported')",
        "print(getattr(sys, '_base_executable', '') or sys.executable)",
        "print('%d.%d.%d' % sys.version_info[:3])",
        "print(paths['purelib'].replace('/@V/', '', 1) if paths['purelib'].startswith('/@V/') else '')",
        "print(paths['platlib'].replace('/@V/', '', 1) if paths['platlib'].startswith('/@V/') else '')",
    ]

    /// Creates the environment at `path` (which must not exist). On failure the partial folder is
    /// removed; the caller builds in a scratch folder anyway.
    func create(at path: String) throws {
        let fm = FileManager.default
        guard !fm.fileExists(atPath: path) else { throw InstallFailure("cannot create the virtual environment: \(path) exists") }
        do {
            try fm.createDirectory(atPath: "\(path)/bin", withIntermediateDirectories: true)
            for site in sitePackages {
                try fm.createDirectory(atPath: "\(path)/\(site)", withIntermediateDirectories: true)
            }
            #if arch(x86_64) || arch(arm64)
            #if os(Linux)
            if !fm.fileExists(atPath: "\(path)/lib64") && fm.fileExists(atPath: "\(path)/lib") {
                try fm.createSymbolicLink(atPath: "\(path)/lib64", withDestinationPath: "lib")
            }
            #endif
            #endif
            try fm.createSymbolicLink(atPath: "\(path)/bin/python", withDestinationPath: baseExecutable)
            for alias in ["python3", "python\(shortVersion)"] {
                try fm.createSymbolicLink(atPath: "\(path)/bin/\(alias)", withDestinationPath: "python")
            }
            let home = (baseExecutable as NSString).deletingLastPathComponent
            let configuration = """
                home = \(home)
                implementation = CPython
                version_info = \(versionInfo)
                include-system-site-packages = false
                relocatable = true
                atom-installer = 1

                """
            try Data(configuration.utf8).write(to: URL(fileURLWithPath: "\(path)/pyvenv.cfg"))
        } catch let failure as InstallFailure {
            try? fm.removeItem(atPath: path)
            throw failure
        } catch {
            try? fm.removeItem(atPath: path)
            throw InstallFailure("cannot create the virtual environment at \(path): \(error.localizedDescription)")
        }
    }
}
