internal import Foundation

/// Settings every process reads from its environment, validated once at start.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `ATOM_GATEWAY` | `tcp://127.0.0.1:7700` | the gateway endpoint: where the gateway listens, and where clients and services connect |
/// | `ATOM_GATEWAY_LOCAL` | unset | the gateway: a second endpoint it listens on, for processes on its host (`atom up` sets an ipc endpoint under `ATOM_HOME`) |
/// | `ATOM_HOME` | `~/.atom` | state: databases, environments, logs, the pid file of `atom up --detach` |
/// | `ATOM_INSTANCE_ID` | `<host>-<pid>-<random>` | a service instance's id |
/// | `ATOM_CAPACITY` | `64` | calls a service instance runs at once |
/// | `ATOM_HEARTBEAT_MS` | `1000` | heartbeat interval between instances and the gateway (50-60000) |
/// | `ATOM_IDLE_POLL_US` | `500` | how long the gateway's and a client's reactor keep polling after call traffic before they sleep, while at most one call is in flight (0-100000; 0 turns it off) |
/// | `ATOM_LOG_LEVEL` | `info` | trace, debug, info, notice, warning, error, critical |
/// | `ATOM_CURVE_SECRET_KEY` | unset | this process's CurveZMQ secret key file (mode 0600) |
/// | `ATOM_CURVE_SERVER_KEY` | unset | clients and services: the gateway's public key file |
/// | `ATOM_CURVE_AUTHORIZED_KEYS` | unset | the gateway: the public keys it accepts, one per line |
public struct AtomEnvironment: Sendable {
    public static let defaultGateway = "tcp://127.0.0.1:7700"

    public var gateway: String
    /// The gateway only: a second endpoint to listen on (see `localGatewayEndpoint(home:)`).
    public var gatewayLocal: String?
    public var home: String
    public var instanceID: String?
    public var capacity: Int
    public var heartbeatInterval: Duration
    /// How long a reactor thread keeps polling after its last message before it sleeps.
    public var idlePollWindow: Duration
    /// The scheduler slice threads on the message path ask for (`ReactorScheduling`); nil: the
    /// kernel's default.
    public var reactorSlice: Duration?
    public var logLevel: String
    public var curveSecretKeyFile: String?
    public var curveServerKeyFile: String?
    public var curveAuthorizedKeysFile: String?

    /// An invalid setting: the process stops at start with this message.
    public struct InvalidSetting: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Reads the process environment and the config file (see `AtomSettings`).
    public init() throws {
        try self.init(AtomSettings.resolve().values)
    }

    public init(_ environment: [String: String]) throws {
        gateway = environment["ATOM_GATEWAY"].flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultGateway
        if let problem = Self.endpointProblem(gateway) {
            throw InvalidSetting(description: "ATOM_GATEWAY=\(gateway) \(problem)")
        }
        gatewayLocal = environment["ATOM_GATEWAY_LOCAL"].flatMap { $0.isEmpty ? nil : $0 }
        if let local = gatewayLocal, let problem = Self.endpointProblem(local) {
            throw InvalidSetting(description: "ATOM_GATEWAY_LOCAL=\(local) \(problem)")
        }
        if let home = environment["ATOM_HOME"], !home.isEmpty {
            self.home = home
        } else {
            self.home = (environment["HOME"] ?? NSHomeDirectory()) + "/.atom"
        }
        instanceID = environment["ATOM_INSTANCE_ID"].flatMap { $0.isEmpty ? nil : $0 }
        capacity = try Self.integer(environment, "ATOM_CAPACITY", default: 64, range: 1...100_000)
        heartbeatInterval = .milliseconds(try Self.integer(environment, "ATOM_HEARTBEAT_MS", default: 1_000, range: 50...60_000))
        idlePollWindow = .microseconds(try Self.integer(environment, "ATOM_IDLE_POLL_US", default: Int(IdlePoll.defaultWindow / .microseconds(1)), range: 0...100_000))
        let sliceMicroseconds = try Self.integer(
            environment, "ATOM_REACTOR_SLICE_US", default: Int(ReactorScheduling.defaultSlice / .microseconds(1)), range: 0...100_000)
        guard sliceMicroseconds == 0 || sliceMicroseconds >= 100 else {
            throw InvalidSetting(description: "ATOM_REACTOR_SLICE_US=\(sliceMicroseconds): the kernel's shortest slice is 100 (or 0 for its default)")
        }
        reactorSlice = sliceMicroseconds == 0 ? nil : .microseconds(sliceMicroseconds)
        logLevel = environment["ATOM_LOG_LEVEL"] ?? "info"
        curveSecretKeyFile = environment["ATOM_CURVE_SECRET_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        curveServerKeyFile = environment["ATOM_CURVE_SERVER_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        curveAuthorizedKeysFile = environment["ATOM_CURVE_AUTHORIZED_KEYS"].flatMap { $0.isEmpty ? nil : $0 }
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        guard levels.contains(logLevel) else {
            throw InvalidSetting(description: "ATOM_LOG_LEVEL=\(logLevel) is not one of \(levels.joined(separator: ", "))")
        }
    }

    /// How a client or a service secures its link to the gateway: CurveZMQ when both
    /// ATOM_CURVE_SERVER_KEY and ATOM_CURVE_SECRET_KEY are set, plaintext when neither is.
    public func clientSecurity() throws -> TransportSecurity {
        switch (curveServerKeyFile, curveSecretKeyFile) {
        case (nil, _):
            return .plaintext
        case (.some(let server), nil):
            throw InvalidSetting(description: "ATOM_CURVE_SERVER_KEY=\(server) needs ATOM_CURVE_SECRET_KEY too (this process's secret key file; `atom keys generate` writes one)")
        case (.some(let server), .some(let secret)):
            do {
                return .curve(serverPublicKey: try CurveKeyFile.readPublicKey(server), keys: try CurveKeyPair.load(secretKeyFile: secret))
            } catch {
                throw InvalidSetting(description: "\(error)")
            }
        }
    }

    /// The gateway's CurveZMQ settings: its key pair and the keys it accepts, or nil (plaintext)
    /// when ATOM_CURVE_AUTHORIZED_KEYS is not set.
    public func gatewaySecurity() throws -> CurveServerSecurity? {
        guard let authorized = curveAuthorizedKeysFile else { return nil }
        guard let secret = curveSecretKeyFile else {
            throw InvalidSetting(description: "ATOM_CURVE_AUTHORIZED_KEYS=\(authorized) needs ATOM_CURVE_SECRET_KEY too (the gateway's secret key file)")
        }
        do {
            return CurveServerSecurity(keys: try CurveKeyPair.load(secretKeyFile: secret), authorizedKeys: try CurveKeyFile.readAuthorizedKeys(authorized))
        } catch {
            throw InvalidSetting(description: "\(error)")
        }
    }

    /// The same-host endpoint of the gateway of the stack under `home`: a Unix socket, which costs
    /// the kernel far less per message than TCP loopback (on this project's 2-core reference
    /// machine, a gateway call over it takes about a third less CPU), and which only users who
    /// can enter `home/run` can connect to. Nil when the path is too long for a Unix socket.
    public static func localGatewayEndpoint(home: String) -> String? {
        let endpoint = "ipc://\(home)/run/gateway.ipc"
        return endpointProblem(endpoint) == nil ? endpoint : nil
    }

    /// What is wrong with an endpoint, as the end of a sentence ("... is not ..."), or nil.
    /// libzmq itself accepts some nonsense (a TCP port of 99999 silently becomes 34463), so
    /// endpoints are checked here first.
    public static func endpointProblem(_ value: String) -> String? {
        let usage = "is not an endpoint; use tcp://HOST:PORT (port 1-65535, or * for any) or ipc:///PATH"
        if value.hasPrefix("ipc://") {
            let path = value.dropFirst("ipc://".count)
            if path.isEmpty { return usage }
            if path.utf8.count > 107 { return "has an ipc path longer than the 107 bytes a Unix socket allows" }
            return nil
        }
        if value.hasPrefix("inproc://") { return value.count > "inproc://".count ? nil : usage }
        guard value.hasPrefix("tcp://") else { return usage }
        let rest = value.dropFirst("tcp://".count)
        guard let colon = rest.lastIndex(of: ":") else { return usage }
        let host = rest[..<colon]
        let port = rest[rest.index(after: colon)...]
        guard !host.isEmpty else { return usage }
        if port == "*" { return nil }
        guard let number = Int(port), (1...65_535).contains(number) else {
            return "has an invalid port \"\(port)\"; use 1-65535, or * for any free port"
        }
        return nil
    }

    /// An integer setting: `value` when unset or empty, an error naming the key and the range when
    /// it is not an integer in `range`. Every service's configuration reads its integers with it.
    /// A boolean setting: 1/true/yes/on or 0/false/no/off; unset or empty gives `value`.
    public static func boolean(_ environment: [String: String], _ key: String, default value: Bool) throws(InvalidSetting) -> Bool {
        guard let text = environment[key]?.lowercased(), !text.isEmpty else { return value }
        switch text {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw InvalidSetting(description: "\(key)=\(text) is invalid; expected true or false")
        }
    }

    public static func integer(_ environment: [String: String], _ key: String, default value: Int, range: ClosedRange<Int>) throws(InvalidSetting) -> Int {
        guard let text = environment[key], !text.isEmpty else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw InvalidSetting(description: "\(key)=\(text) is invalid; expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }
}
