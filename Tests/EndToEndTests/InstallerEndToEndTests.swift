import AtomAPI
import AtomCLI
import AtomProto
import AtomRPC
import AtomTesting
import Foundation
import Testing

/// The real gateway and `atom-installer` processes, real uv and npm, an offline wheelhouse.
@Suite("Installer end to end", .serialized, .timeLimit(.minutes(5)))
struct InstallerEndToEndTests {
    /// Runs `body` with a gateway, one installer and a wheelhouse; cleans everything up.
    func withInstaller<T>(environment: [String: String] = [:], _ body: (LocalStack, InstallerClient, String) async throws -> T) async throws -> T {
        let scratch = try ScratchDirectory("installer-e2e")
        defer { scratch.remove() }
        let wheelhouse = scratch.path + "/wheels"
        try InstallerFixtures.makeWheelhouse(at: wheelhouse)
        return try await withProcessStack(echoInstances: 0) { stack in
            try stack.startInstaller(environment: environment)
            do {
                try await stack.waitForService("atom.v1.Installer")
            } catch {
                print("--- installer log ---\n\(stack.log(of: "installer-1").suffix(3000))")
                throw error
            }
            let client = try RPCClient(endpoint: stack.endpoint)
            defer { client.close() }
            return try await body(stack, InstallerClient(client), wheelhouse)
        }
    }

    func offline(_ wheelhouse: String) -> InstallOptions { InstallOptions(findLinks: [wheelhouse], offline: true) }

    func expectInvalid(_ installer: InstallerClient, _ request: InstallRequest, mentions: [String]) async {
        do {
            for try await event in installer.installDependencies(request) { Issue.record("unexpected event \(event)") }
            Issue.record("expected INVALID_ARGUMENT for \(request.packages.prefix(3))")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument, "\(error)")
            for text in mentions { #expect(error.message.contains(text), "\(error.message) should mention \(text)") }
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("install streams phases and ends with the result; a repeat is a cache hit through the gateway")
    func streamAndCacheHit() async throws {
        try await withInstaller { stack, installer, wheelhouse in
            let request = InstallRequest(skillId: "weather", packages: ["beta==1.0"], agentId: "agent-1", options: offline(wheelhouse))
            var phases: [InstallPhase] = []
            var final: InstallResult?
            for try await event in installer.installDependencies(request, options: CallOptions(timeout: .seconds(120))) {
                phases.append(event.phase)
                if event.phase == .done { final = event.result }
            }
            let result = try #require(final)
            #expect(result.success, "\(result.error)")
            #expect(!result.cached)
            #expect(phases.first == .resolving && phases.last == .done)
            #expect(phases.contains(.installing) && phases.contains(.verifying))
            #expect(FileManager.default.fileExists(atPath: "\(stack.home)/envs/\(result.environmentId)/.atom-ready"))

            for _ in 0..<20 {
                var cached: InstallResult?
                for try await event in installer.installDependencies(request) where event.phase == .done { cached = event.result }
                #expect(cached?.cached == true && cached?.environmentId == result.environmentId)
            }
            // How fast a hit is, is `atom bench install`'s business; here: the operations are
            // recorded under their stable names and merged by the gateway.
            let metrics = try await GatewayClient(installer.rpc).metrics(GatewayMetricsRequest())
            let operations = Dictionary(uniqueKeysWithValues: metrics.operations.map { ($0.operation, $0.count) })
            #expect(operations["package_install"] == 1)
            #expect(operations["package_install_cached"] == 20)
            #expect(operations["rpc.atom.v1.Installer/InstallDependencies"] == 21)
        }
    }

    @Test("bad input is INVALID_ARGUMENT naming the item and position")
    func badInput() async throws {
        try await withInstaller { _, installer, wheelhouse in
            let options = offline(wheelhouse)
            await expectInvalid(installer, InstallRequest(packages: ["delta", "foo>=1.0,<"], options: options), mentions: ["packages[1]", "position 10"])
            await expectInvalid(installer, InstallRequest(packages: ["foo[bar"], options: options), mentions: ["packages[0]", "position 7"])
            await expectInvalid(installer, InstallRequest(packages: ["delta"], packageType: .unrecognized(7), options: options), mentions: ["package_type 7"])
            await expectInvalid(installer, InstallRequest(packages: [], options: options), mentions: ["empty"])
            await expectInvalid(installer, InstallRequest(skillId: "../etc", packages: ["delta"]), mentions: ["skill_id", "position"])
            await expectInvalid(installer, InstallRequest(skillId: "a/b", packages: ["delta"]), mentions: ["path separator", "position 1"])
            await expectInvalid(installer, InstallRequest(packages: Array(repeating: "delta", count: 501)), mentions: ["at most 500"])
            await expectInvalid(installer, InstallRequest(packages: [String(repeating: "a", count: 5_000)]), mentions: ["packages[0]", "at most 1000"])
            await expectInvalid(installer, InstallRequest(packages: ["delta"], options: InstallOptions(memoryLimit: "512x")), mentions: ["memory_limit", "512x"])
            await expectInvalid(installer, InstallRequest(packages: ["lodash@^"], packageType: .npm), mentions: ["packages[0]", "position 8"])
            for batch in [BatchInstallRequest(), BatchInstallRequest(installations: Array(repeating: InstallRequest(packages: ["delta"]), count: 101))] {
                do {
                    _ = try await installer.batchInstall(batch)
                    Issue.record("a batch of \(batch.installations.count) items must be INVALID_ARGUMENT")
                } catch let error as RPCError {
                    #expect(error.code == .invalidArgument && error.message.contains("installations"), "\(error)")
                }
            }
            do {
                _ = try await installer.resolveDependencies(ResolveRequest(packages: ["ok", "bad=="], directOnly: true))
                Issue.record("a malformed requirement must be INVALID_ARGUMENT")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument && error.message.contains("packages[1]"), "\(error)")
            }
            // Bad input never leaves anything behind.
            let envs = try await installer.listEnvironments(ListEnvironmentsRequest())
            #expect(envs.environments.isEmpty)
        }
    }

    @Test("batch: parallel, deduplicated, one result per item; one failure does not abort the others")
    func batch() async throws {
        try await withInstaller { stack, installer, wheelhouse in
            let options = offline(wheelhouse)
            let batch = BatchInstallRequest(installations: [
                InstallRequest(skillId: "s1", packages: ["alpha==1.0"], options: options),
                InstallRequest(skillId: "s2", packages: ["beta", "gamma"], options: options),
                InstallRequest(skillId: "s3", packages: ["Alpha == 1.0"], options: options),
                InstallRequest(skillId: "bad/id", packages: ["delta"], options: options),
                InstallRequest(skillId: "s5", packages: ["delta"], options: options),
            ], agentId: "agent-9")
            let response = try await installer.batchInstall(batch, options: CallOptions(timeout: .seconds(120)))
            #expect(response.total == 5 && response.successes == 3 && response.failures == 2)
            #expect(response.results.map(\.skillId) == ["s1", "s2", "s3", "bad/id", "s5"])
            #expect(response.results[0].environmentId == response.results[2].environmentId)
            #expect(!response.results[1].success && !response.results[1].conflicts.isEmpty)
            #expect(response.results[3].error.contains("installations[3].skill_id"))
            // Both skills of the deduplicated item are bound to the environment.
            for skill in ["s1", "s3"] {
                let binding = try String(contentsOfFile: "\(stack.home)/skills/\(skill).json", encoding: .utf8)
                #expect(binding.contains(response.results[0].environmentId))
            }
        }
    }

    @Test("resolve: direct conflicts in Swift, transitive ones from uv, locks cached")
    func resolve() async throws {
        try await withInstaller { _, installer, wheelhouse in
            let direct = try await installer.resolveDependencies(ResolveRequest(packages: ["NumPy==1.21", "numpy==1.24"], directOnly: true))
            #expect(!direct.ok)
            #expect(direct.conflicts.first?.package == "numpy")
            #expect(direct.conflicts.first?.requirements == ["NumPy==1.21", "numpy==1.24"])
            let fine = try await installer.resolveDependencies(ResolveRequest(packages: ["numpy>=1.20", "numpy<2"], directOnly: true))
            #expect(fine.ok && fine.conflicts.isEmpty)
            let options = offline(wheelhouse)
            let transitive = try await installer.resolveDependencies(ResolveRequest(packages: ["beta", "gamma"], options: options), options: CallOptions(timeout: .seconds(60)))
            #expect(!transitive.ok)
            #expect(transitive.conflicts.first?.reason.contains("alpha") == true)
            let lock = try await installer.resolveDependencies(ResolveRequest(packages: ["beta"], options: options), options: CallOptions(timeout: .seconds(60)))
            #expect(lock.ok && !lock.cached)
            #expect(lock.locked.map { "\($0.name)==\($0.version)" }.sorted() == ["alpha==1.1", "beta==1.0"])
            let again = try await installer.resolveDependencies(ResolveRequest(packages: ["BETA"], options: options))
            #expect(again.cached)
        }
    }

    @Test("atom install, atom resolve and atom envs list")
    func cli() async throws {
        try await withInstaller { stack, _, wheelhouse in
            let environment = ["ATOM_GATEWAY": stack.endpoint, "ATOM_HOME": stack.home]
            let install = try CLI.run(["install", "--skill", "cli-skill", "--find-links", wheelhouse, "--offline", "--memory", "512m", "beta==1.0"], environment: environment)
            #expect(install.status == 0, "\(install.output)")
            #expect(install.output.contains("cli-skill: ok"), "\(install.output)")
            #expect(install.output.contains("resolving"), "progress lines: \(install.output)")
            #expect(install.output.contains("alpha==1.1"))
            let list = try CLI.run(["envs", "list", "--json"], environment: environment)
            #expect(list.status == 0 && list.output.contains("beta==1.0"), "\(list.output)")
            let gc = try CLI.run(["envs", "gc", "--unused-for", "7d", "--dry-run"], environment: environment)
            #expect(gc.status == 0 && gc.output.contains("dry run: 0.0 MB freed, 1 environment(s) kept"), "\(gc.output)")
            let badGC = try CLI.run(["envs", "gc", "--unused-for", "7x"], environment: environment)
            #expect(badGC.status == 2, "\(badGC.output)")
            let conflict = try CLI.run(["resolve", "--direct-only", "NumPy==1.21", "numpy==1.24"], environment: environment)
            #expect(conflict.status == 1 && conflict.output.contains("NumPy==1.21 vs numpy==1.24"), "\(conflict.output)")
            let failed = try CLI.run(["install", "--find-links", wheelhouse, "--offline", "beta", "gamma"], environment: environment)
            #expect(failed.status == 1 && failed.output.contains("FAILED"), "\(failed.output)")
            let bad = try CLI.run(["install", "foo=="], environment: environment)
            #expect(bad.status == 4 && bad.output.contains("INVALID_ARGUMENT"), "\(bad.output)")
            let batchFile = stack.home + "/batch.json"
            try #"[{"skill_id": "b1", "packages": ["delta"]}, {"skill_id": "b2", "packages": ["alpha==2.0"]}]"#.write(toFile: batchFile, atomically: true, encoding: .utf8)
            let batch = try CLI.run(["install", "--batch", batchFile, "--find-links", wheelhouse, "--offline"], environment: environment)
            #expect(batch.status == 0 && batch.output.contains("2 total, 2 succeeded, 0 failed"), "\(batch.output)")
        }
    }
    @Test("killing the installer mid-build leaves no environment that looks valid; the next one builds it")
    func killMidBuild() async throws {
        let scratch = try ScratchDirectory("installer-kill")
        defer { scratch.remove() }
        let wheelhouse = scratch.path + "/wheels"
        try InstallerFixtures.makeWheelhouse(at: wheelhouse)
        // Real uv, slowed before it installs so the kill lands mid-build.
        let uv = try #require(ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":")
            .map { "\($0)/uv" }.first { FileManager.default.isExecutableFile(atPath: $0) })
        let slowUV = scratch.path + "/slow-uv"
        try "#!/bin/sh\nif [ \"$1\" = pip ] && { [ \"$2\" = sync ] || [ \"$2\" = install ]; }; then sleep 2; fi\nexec \(uv) \"$@\"\n"
            .write(toFile: slowUV, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: slowUV)

        try await withProcessStack(echoInstances: 0) { stack in
            let victim = try stack.startInstaller(instanceID: "installer-1", environment: ["ATOM_INSTALLER_UV": slowUV])
            try await stack.waitForService("atom.v1.Installer")
            let client = try RPCClient(endpoint: stack.endpoint)
            defer { client.close() }
            let installer = InstallerClient(client)
            let request = InstallRequest(skillId: "crash", packages: ["beta==1.0"], options: offline(wheelhouse))
            var sawDownloading = false
            do {
                for try await event in installer.installDependencies(request, options: CallOptions(timeout: .seconds(60))) {
                    if event.phase == .downloading && !sawDownloading {
                        sawDownloading = true
                        try await Task.sleep(for: .milliseconds(300))
                        victim.kill()
                    }
                    #expect(event.phase != .done, "the build must not finish: \(event)")
                }
                Issue.record("the stream should fail when the installer dies")
            } catch let error as RPCError {
                #expect(error.code == .unavailable, "\(error)")
            }
            #expect(sawDownloading)
            #expect(await victim.waitForExit(timeout: .seconds(5)))
            let envs = "\(stack.home)/envs"
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: envs)) ?? []
            #expect(!entries.contains { FileManager.default.fileExists(atPath: "\(envs)/\($0)/.atom-ready") }, "\(entries)")

            try stack.startInstaller(instanceID: "installer-2")
            try await stack.waitForService("atom.v1.Installer")
            var final: InstallResult?
            for try await event in installer.installDependencies(request, options: CallOptions(timeout: .seconds(60))) where event.phase == .done {
                final = event.result
            }
            let result = try #require(final)
            #expect(result.success && !result.cached, "\(result.error)")
            let listed = try await installer.listEnvironments(ListEnvironmentsRequest())
            #expect(listed.environments.map(\.environmentId) == [result.environmentId])
            // The killed build's uv lives on as an orphan for a moment; let it end before the
            // stack removes its home.
            try await Task.sleep(for: .seconds(2))
        }
    }
}
