internal import ArgumentParser
internal import AtomRPC
internal import Foundation

/// `atom config`: the effective configuration and where each value came from.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the effective configuration and where each value came from.",
        discussion: "Precedence: environment, then the config file (ATOM_CONFIG or $ATOM_HOME/config.env), then defaults.")

    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false

    func run() async throws {
        try await reportingFailures(json: json) {
            let resolved: AtomSettings.Resolved
            do {
                resolved = try AtomSettings.resolve()
            } catch {
                throw CLIFailure(.usage, "\(error)")
            }
            struct Entry: Encodable {
                let name: String, value: String?, source: String, used_by: String, description: String
            }
            let entries = AtomSettings.specs.map { spec in
                Entry(
                    name: spec.name, value: resolved.value(spec.name),
                    source: resolved.sources[spec.name].map(\.description) ?? "unset", used_by: spec.usedBy,
                    description: spec.description)
            }
            if json {
                try printJSON(entries)
                return
            }
            if let file = resolved.configFile { print("config file: \(file)") } else { print("config file: none") }
            let nameWidth = entries.map(\.name.count).max() ?? 0
            let valueWidth = min(48, entries.map { ($0.value ?? "-").count }.max() ?? 0)
            for entry in entries {
                let value = entry.value ?? "-"
                print("\(entry.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  \(value.padding(toLength: max(valueWidth, value.count), withPad: " ", startingAt: 0))  (\(entry.source))")
            }
        }
    }
}
