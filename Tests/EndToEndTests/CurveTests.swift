import AtomAPI
import AtomCLI
import AtomProto
import AtomRPC
import AtomTesting
import Foundation
import Testing

@Suite("CurveZMQ", .serialized, .timeLimit(.minutes(2)))
struct CurveTests {
    @Test("listed keys work end to end; an unknown key gets UNAUTHENTICATED and never reaches a service")
    func curve() async throws {
        let dir = NSTemporaryDirectory() + "atom-keys-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["gateway", "service", "client", "stranger"] {
            let generated = try CLI.run(["keys", "generate", "--name", name, "--dir", dir], environment: [:])
            #expect(generated.status == 0, "\(generated.output)")
        }
        let attributes = try FileManager.default.attributesOfItem(atPath: "\(dir)/client.key")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let again = try CLI.run(["keys", "generate", "--name", "client", "--dir", dir], environment: [:])
        #expect(again.status == 1)
        #expect(again.output.contains("exists already"))

        let servicePublic = try CurveKeyFile.readPublicKey("\(dir)/service.pub")
        let clientPublic = try CurveKeyFile.readPublicKey("\(dir)/client.pub")
        try "# accepted keys\n\(servicePublic) echo service\n\(clientPublic) test client\n"
            .write(toFile: "\(dir)/authorized_keys", atomically: true, encoding: .utf8)
        let gatewayPublic = try CurveKeyFile.readPublicKey("\(dir)/gateway.pub")
        let clientKeys = try CurveKeyPair.load(secretKeyFile: "\(dir)/client.key")
        let strangerKeys = try CurveKeyPair.load(secretKeyFile: "\(dir)/stranger.key")

        let stack = try LocalStack(heartbeatMs: 200, binDirectory: TestBinaries.directory)
        stack.security = .curve(serverPublicKey: gatewayPublic, keys: clientKeys)
        do {
            try stack.start("atom-gateway", environment: [
                "ATOM_CURVE_SECRET_KEY": "\(dir)/gateway.key", "ATOM_CURVE_AUTHORIZED_KEYS": "\(dir)/authorized_keys",
            ])
            try stack.startEcho(instanceID: "echo-1", environment: [
                "ATOM_CURVE_SECRET_KEY": "\(dir)/service.key", "ATOM_CURVE_SERVER_KEY": "\(dir)/gateway.pub",
            ])
            try await stack.waitForService(EchoClient.serviceName)
            let client = try RPCClient(endpoint: stack.endpoint, security: .curve(serverPublicKey: gatewayPublic, keys: clientKeys))
            defer { client.close() }
            let answer = try await EchoClient(client).echo(EchoRequest(text: "encrypted"))
            #expect(answer.text == "encrypted")
            let before = try await GatewayClient(client).listServices(ListServicesRequest())

            let stranger = try RPCClient(endpoint: stack.endpoint, security: .curve(serverPublicKey: gatewayPublic, keys: strangerKeys))
            defer { stranger.close() }
            let start = ContinuousClock.now
            let refused = await #expect(throws: RPCError.self) {
                _ = try await EchoClient(stranger).echo(EchoRequest(text: "let me in"), options: CallOptions(timeout: .seconds(10)))
            }
            #expect(refused?.code == .unauthenticated)
            #expect(refused?.message.contains("rejected this process's CurveZMQ key") == true, "\(refused?.message ?? "")")
            #expect(ContinuousClock.now - start < .seconds(5))

            let plain = try RPCClient(endpoint: stack.endpoint)
            defer { plain.close() }
            let plaintextError = await #expect(throws: RPCError.self) {
                _ = try await EchoClient(plain).echo(EchoRequest(), options: CallOptions(timeout: .seconds(10)))
            }
            #expect(plaintextError?.code == .unauthenticated || plaintextError?.code == .unavailable, "\(String(describing: plaintextError))")

            let after = try await GatewayClient(client).listServices(ListServicesRequest())
            #expect(after.services.first?.instances.first?.callsTotal == before.services.first?.instances.first?.callsTotal)

            // The CLI with keys from the environment.
            let environment = ["ATOM_GATEWAY": stack.endpoint, "ATOM_CURVE_SERVER_KEY": "\(dir)/gateway.pub"]
            let health = try CLI.run(["health"], environment: environment.merging(["ATOM_CURVE_SECRET_KEY": "\(dir)/client.key"]) { $1 })
            #expect(health.status == 0, "\(health.output)")
            let strangerHealth = try CLI.run(["health"], environment: environment.merging(["ATOM_CURVE_SECRET_KEY": "\(dir)/stranger.key"]) { $1 })
            #expect(strangerHealth.status == 4, "\(strangerHealth.output)")
            #expect(strangerHealth.output.contains("UNAUTHENTICATED"))
            let halfConfigured = try CLI.run(["health"], environment: environment)
            #expect(halfConfigured.status == 2)
            #expect(halfConfigured.output.contains("needs ATOM_CURVE_SECRET_KEY"))
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: "\(dir)/stranger.key")
            let looseKey = try CLI.run(["health"], environment: environment.merging(["ATOM_CURVE_SECRET_KEY": "\(dir)/stranger.key"]) { $1 })
            #expect(looseKey.status == 2)
            #expect(looseKey.output.contains("chmod 600"))

            // A service with an unknown key never registers, and says why.
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: "\(dir)/stranger.key")
            try stack.startEcho(instanceID: "intruder", environment: [
                "ATOM_CURVE_SECRET_KEY": "\(dir)/stranger.key", "ATOM_CURVE_SERVER_KEY": "\(dir)/gateway.pub",
            ])
            var logged = false
            for _ in 0..<60 where !logged {
                try await Task.sleep(for: .milliseconds(100))
                logged = stack.log(of: "intruder").contains("rejected this process's CurveZMQ key")
            }
            #expect(logged, "\(stack.log(of: "intruder"))")
            let listing = try await GatewayClient(client).listServices(ListServicesRequest())
            #expect(listing.services.first?.instances.map(\.instanceId) == ["echo-1"])
        } catch {
            print(stack.log(of: "atom-gateway"))
            await stack.stopAll()
            throw error
        }
        await stack.stopAll()
    }
}
