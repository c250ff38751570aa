internal import CZeroMQ
internal import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A CurveZMQ key pair in Z85 text (40 characters each).
public struct CurveKeyPair: Sendable, Hashable {
    public let publicKey: String
    public let secretKey: String

    /// A new random key pair (libzmq's `zmq_curve_keypair`, backed by libsodium).
    public static func generate() throws -> CurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else {
            throw CurveKeyError("cannot generate a CURVE key pair: \(ZMQError.last("zmq_curve_keypair"))")
        }
        return CurveKeyPair(publicKey: String(nulTerminated: publicKey), secretKey: String(nulTerminated: secretKey))
    }

    private init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// The pair of a secret key (the public half is derived from it).
    public init(secretKey: String) throws {
        guard CurveKeyPair.isZ85Key(secretKey) else {
            throw CurveKeyError("a CURVE secret key is 40 Z85 characters")
        }
        var publicKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicKey, secretKey) == 0 else {
            throw CurveKeyError("cannot derive the public key: \(ZMQError.last("zmq_curve_public"))")
        }
        self.publicKey = String(nulTerminated: publicKey)
        self.secretKey = secretKey
    }

    static func isZ85Key(_ text: String) -> Bool {
        let alphabet = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")
        return text.count == 40 && text.allSatisfy(alphabet.contains)
    }

    /// Reads a secret key file. The file must not be readable by group or others (like ssh):
    /// a key anyone on the host can read authenticates nobody.
    public static func load(secretKeyFile path: String) throws -> CurveKeyPair {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw CurveKeyError("cannot read the secret key file \(path): \(String(cString: strerror(errno)))")
        }
        let mode = status.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw CurveKeyError(String(format: "the secret key file %@ has mode %o: it must not be readable by others; run chmod 600 %@", path, mode, path))
        }
        return try CurveKeyPair(secretKey: try CurveKeyFile.firstKey(in: path))
    }

    /// Writes `NAME.key` (the secret key, mode 0600) and `NAME.pub` (the public key) into
    /// `directory`; refuses to overwrite unless `overwrite`.
    @discardableResult
    public func write(to directory: String, name: String, overwrite: Bool = false) throws -> (secret: String, public: String) {
        guard !name.isEmpty, !name.contains("/"), name != "..", name != "." else {
            throw CurveKeyError("a key name must be a plain file name, not \"\(name)\"")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let secretPath = "\(directory)/\(name).key"
        let publicPath = "\(directory)/\(name).pub"
        for path in [secretPath, publicPath] where !overwrite && FileManager.default.fileExists(atPath: path) {
            throw CurveKeyError("\(path) exists already; choose another name or pass --force")
        }
        // Created with mode 0600 from the start: the secret is never readable by others.
        let fd = open(secretPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw CurveKeyError("cannot write \(secretPath): \(String(cString: strerror(errno)))") }
        let secretText = "# CurveZMQ secret key (keep private)\n\(secretKey)\n"
        let written = secretText.withCString { Glibc.write(fd, $0, strlen($0)) }
        fchmod(fd, 0o600)
        close(fd)
        guard written == secretText.utf8.count else { throw CurveKeyError("cannot write \(secretPath)") }
        try "# CurveZMQ public key\n\(publicKey)\n".write(toFile: publicPath, atomically: true, encoding: .utf8)
        return (secretPath, publicPath)
    }
}

/// Key files: one Z85 key per line; `#` starts a comment. An authorized-keys file lists the
/// public keys the gateway accepts, each optionally followed by a name (`KEY name`).
public enum CurveKeyFile {
    static func lines(_ path: String) throws -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CurveKeyError("cannot read the key file \(path)")
        }
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    static func firstKey(in path: String) throws -> String {
        guard let key = try lines(path).first?.split(separator: " ").first.map(String.init), CurveKeyPair.isZ85Key(key) else {
            throw CurveKeyError("\(path) holds no CURVE key (40 Z85 characters)")
        }
        return key
    }

    /// The public key in a `.pub` file.
    public static func readPublicKey(_ path: String) throws -> String {
        try firstKey(in: path)
    }

    /// The keys an authorized-keys file allows, with their names (the key itself when unnamed).
    public static func readAuthorizedKeys(_ path: String) throws -> [String: String] {
        var keys: [String: String] = [:]
        for (number, line) in try lines(path).enumerated() {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard CurveKeyPair.isZ85Key(parts[0]) else {
                throw CurveKeyError("\(path): entry \(number + 1) is not a CURVE public key (40 Z85 characters)")
            }
            keys[parts[0]] = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : parts[0]
        }
        return keys
    }
}

public struct CurveKeyError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// How a client or service secures its link to the gateway.
public enum TransportSecurity: Sendable, Hashable {
    /// No encryption or authentication: for loopback development only.
    case plaintext
    /// CurveZMQ: the link is encrypted, the gateway is authenticated by its public key and
    /// this peer by its key pair.
    case curve(serverPublicKey: String, keys: CurveKeyPair)
}

/// The gateway's side of CurveZMQ: its key pair and the public keys it accepts.
public struct CurveServerSecurity: Sendable, Hashable {
    public let keys: CurveKeyPair
    /// Accepted public keys and their names.
    public let authorizedKeys: [String: String]

    public init(keys: CurveKeyPair, authorizedKeys: [String: String]) {
        self.keys = keys
        self.authorizedKeys = authorizedKeys
    }
}
