internal import ArgumentParser
internal import AtomRPC
internal import Foundation

/// `atom keys`: CurveZMQ key management.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Manage CurveZMQ keys.", subcommands: [GenerateKeysCommand.self])
}

/// `atom keys generate`: writes a key pair; the secret never appears on a command line.
struct GenerateKeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a CurveZMQ key pair: NAME.key (secret, mode 0600) and NAME.pub.",
        discussion: """
            Give the gateway ATOM_CURVE_SECRET_KEY=gateway.key and ATOM_CURVE_AUTHORIZED_KEYS=FILE (the \
            .pub lines of every client and service it accepts); give each client and service \
            ATOM_CURVE_SECRET_KEY=its .key and ATOM_CURVE_SERVER_KEY=gateway.pub.
            """)

    @Option(name: .long, help: "File name for the pair (NAME.key, NAME.pub).")
    var name = "atom"

    @Option(name: .long, help: "Directory to write to (default: $ATOM_HOME/keys).")
    var dir: String?

    @Flag(name: .long, help: "Overwrite an existing pair.")
    var force = false

    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false

    func run() async throws {
        try await reportingFailures(json: json) {
            let directory: String
            if let dir {
                directory = dir
            } else {
                do {
                    directory = try AtomEnvironment().home + "/keys"
                } catch {
                    throw CLIFailure(.usage, "\(error)")
                }
            }
            let pair = try CurveKeyPair.generate()
            let paths: (secret: String, public: String)
            do {
                paths = try pair.write(to: directory, name: name, overwrite: force)
            } catch {
                throw CLIFailure(.failure, "\(error)")
            }
            if json {
                try printJSON(["secret_key_file": paths.secret, "public_key_file": paths.public, "public_key": pair.publicKey])
            } else {
                print("secret key: \(paths.secret) (mode 0600; keep it private)")
                print("public key: \(paths.public)  \(pair.publicKey)")
            }
        }
    }
}
