import AtomRPC
import Foundation
import Testing

/// The deployment files, checked with real parsers (no Docker engine runs here): Debian's
/// docker-compose validates the compose file; every service's Dockerfile, README and example
/// configuration are checked against the package.
@Suite("Deployment files")
struct DeploymentTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The compose file as docker-compose normalises it, as JSON (read with PyYAML).
    func composeModel() throws -> [String: Any] {
        let script = """
            import json, subprocess, sys, yaml
            out = subprocess.run(["docker-compose", "-f", sys.argv[1], "config"], capture_output=True, text=True)
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr); sys.exit(out.returncode)
            print(json.dumps(yaml.safe_load(out.stdout)))
            """
        let result = try CLI.runExecutableAt("/usr/bin/python3", ["-c", script, "\(Self.root)/docker-compose.yml"])
        guard result.status == 0, let json = result.output.firstIndex(of: "{").map({ result.output[$0...] }) else {
            throw RPCError(.invalidArgument, "docker-compose rejected docker-compose.yml: \(result.output)")
        }
        return try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    @Test("docker-compose accepts the compose file; services start after a healthy gateway with named volumes")
    func compose() throws {
        let model = try composeModel()
        let services = try #require(model["services"] as? [String: [String: Any]])
        #expect(services["gateway"] != nil)
        // Every deployable unit in services/ is in the compose file: a new service cannot be forgotten.
        let folders = try FileManager.default.contentsOfDirectory(atPath: "\(Self.root)/services")
        #expect(Set(services.keys) == Set(folders), "compose services \(services.keys.sorted()) vs services/ \(folders.sorted())")
        let volumes = Set((model["volumes"] as? [String: Any])?.keys.map { $0 } ?? [])
        let package = try String(contentsOfFile: "\(Self.root)/Package.swift", encoding: .utf8)
        for (name, service) in services {
            let build = try #require(service["build"] as? [String: Any], "\(name) has no build")
            let dockerfile = try #require(build["dockerfile"] as? String)
            #expect(dockerfile == "services/\(name)/Dockerfile")
            #expect(service["healthcheck"] != nil, "\(name) has no health check")
            let mounts = (service["volumes"] as? [Any]) ?? []
            #expect(mounts.contains { "\($0)".contains("\(name)-state") }, "\(name) has no named state volume")
            #expect(volumes.contains("\(name)-state"))
            if name != "gateway" {
                let dependsOn = try #require(service["depends_on"] as? [String: [String: Any]], "\(name) must wait for the gateway")
                #expect(dependsOn["gateway"]?["condition"] as? String == "service_healthy")
                let environment = service["environment"] as? [String: Any]
                #expect(environment?["ATOM_GATEWAY"] as? String == "tcp://gateway:7700")
            }
            #expect(package.contains("\"atom-\(name)\""), "Package.swift has no atom-\(name) product")
        }
    }

    @Test("every service folder has a multi-stage Dockerfile, a README and a valid example configuration")
    func serviceFolders() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: "\(Self.root)/services").sorted()
        #expect(folders.contains("gateway"))
        for name in folders {
            let folder = "\(Self.root)/services/\(name)"
            let dockerfile = try String(contentsOfFile: "\(folder)/Dockerfile", encoding: .utf8)
            #expect(dockerfile.contains("FROM swift:6.1-bookworm AS build"))
            #expect(dockerfile.contains("FROM debian:bookworm-slim"))
            #expect(dockerfile.contains("--product atom-\(name)"))
            #expect(dockerfile.contains("libzmq5 libprotobuf-c1"))
            #expect(dockerfile.contains("ENTRYPOINT [\"atom-\(name)\"]"))
            #expect(dockerfile.contains("HEALTHCHECK"))
            #expect(FileManager.default.fileExists(atPath: "\(folder)/README.md"))
            #expect(FileManager.default.fileExists(atPath: "\(folder)/Sources/main.swift"))
            // Every key of the example, commented out or not, is a real setting with a valid value.
            let example = try String(contentsOfFile: "\(folder)/config.env.example", encoding: .utf8)
            let uncommented = example.split(separator: "\n").map { line -> String in
                let text = String(line)
                if text.hasPrefix("# "), text.dropFirst(2).first?.isUppercase == true, text.contains("=") { return String(text.dropFirst(2)) }
                return text
            }.joined(separator: "\n")
            let home = NSTemporaryDirectory() + "atom-example-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: home) }
            let path = "\(home)/config.env"
            // Files named in the example need not exist to be checked for shape.
            try uncommented.write(toFile: path, atomically: true, encoding: .utf8)
            let resolved = try AtomSettings.resolve(["ATOM_HOME": home, "ATOM_CONFIG": path])
            #expect(resolved.configFile == path, "\(name)")
        }
    }
}
