import Foundation

/// The package root (the directory holding Package.swift), found from this file's path.
let packageRoot: URL = {
    var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while url.path != "/" {
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        url = url.deletingLastPathComponent()
    }
    fatalError("no Package.swift above \(#filePath)")
}()

struct ProcessResult {
    var status: Int32
    var stdout: Data
    var stderr: String
}

/// Runs `arguments` (looked up on PATH) in the package root, feeding `input` to stdin.
func run(_ arguments: [String], input: Data = Data(), environment: [String: String] = [:]) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    process.currentDirectoryURL = packageRoot
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stderr
    try process.run()
    // Drain both pipes concurrently so that a large output cannot block the child.
    let group = DispatchGroup()
    nonisolated(unsafe) var out = Data(), err = Data()
    group.enter()
    DispatchQueue.global().async { out = stdout.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    group.enter()
    DispatchQueue.global().async { err = stderr.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    stdin.fileHandleForWriting.write(input)
    try stdin.fileHandleForWriting.close()
    process.waitUntilExit()
    group.wait()
    return ProcessResult(status: process.terminationStatus, stdout: out, stderr: String(decoding: err, as: UTF8.self))
}

/// `protoc --decode=atom.v1.<type>`: the text format of `bytes`.
func protocDecode(_ type: String, file: String, _ bytes: [UInt8]) throws -> String {
    let result = try run(["protoc", "-Iproto", "--decode=atom.v1.\(type)", "proto/atom/v1/\(file)"], input: Data(bytes))
    guard result.status == 0 else { throw ProtocFailure(message: result.stderr) }
    return String(decoding: result.stdout, as: UTF8.self)
}

/// `protoc --encode=atom.v1.<type>`: the wire bytes of a text-format message.
func protocEncode(_ type: String, file: String, _ text: String) throws -> [UInt8] {
    let result = try run(["protoc", "-Iproto", "--encode=atom.v1.\(type)", "proto/atom/v1/\(file)"], input: Data(text.utf8))
    guard result.status == 0 else { throw ProtocFailure(message: result.stderr) }
    return [UInt8](result.stdout)
}

struct ProtocFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { "protoc failed: \(message)" }
}
