// atom-protogen: reads a FileDescriptorSet (protoc --include_imports --include_source_info
// --descriptor_set_out) and writes the Swift message types and the typed RPC APIs.
//
//   atom-protogen --descriptor-set FILE --proto-root proto \
//       --swift-out Sources/AtomProto/Generated --api-out Sources/AtomAPI/Generated \
//       [--samples-out Tests/AtomProtoTests/Generated/Samples.swift] [FILE.proto...]
//
// With proto file arguments (relative to the proto root, like atom/v1/echo.proto) only those
// files are generated; otherwise every file in the set.

import Foundation

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("atom-protogen: error: \(message)\n".utf8))
    exit(1)
}

var descriptorSet: String?
var protoRoot = "proto"
var swiftOut: String?
var apiOut: String?
var samplesOut: String?
var selected: [String] = []

var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    func value() -> String {
        guard let v = arguments.popFirst() else { fail("\(argument) needs a value") }
        return v
    }
    switch argument {
    case "--descriptor-set": descriptorSet = value()
    case "--proto-root": protoRoot = value()
    case "--swift-out": swiftOut = value()
    case "--api-out": apiOut = value()
    case "--samples-out": samplesOut = value()
    case "-h", "--help":
        print("usage: atom-protogen --descriptor-set FILE [--proto-root proto] --swift-out DIR --api-out DIR [--samples-out FILE] [FILE.proto...]")
        exit(0)
    default:
        if argument.hasPrefix("-") { fail("unknown option \(argument)") }
        selected.append(argument)
    }
}
guard let descriptorSet, let swiftOut, let apiOut else {
    fail("--descriptor-set, --swift-out and --api-out are required (see --help)")
}

do {
    guard let data = FileManager.default.contents(atPath: descriptorSet) else {
        throw GeneratorError("cannot read descriptor set \(descriptorSet)")
    }
    let allFiles = try DescriptorReader(displayPrefix: protoRoot + "/").read([UInt8](data))
    let wanted = selected.isEmpty
        ? allFiles
        : try selected.map { name in
            guard let file = allFiles.first(where: { $0.name == name }) else {
                throw GeneratorError("\(name) is not in the descriptor set")
            }
            return file
        }
    let emitter = try Emitter(files: allFiles, protoRoot: protoRoot)
    var outputs: [(path: String, text: String)] = []
    for file in wanted {
        let base = Emitter.baseName(file)
        outputs.append((swiftOut + "/" + base + ".pb.swift", emitter.messagesFile(file)))
        if let api = emitter.servicesFile(file) {
            outputs.append((apiOut + "/" + base + ".rpc.swift", api))
        }
    }
    outputs.append((swiftOut + "/ProtoRegistry.swift", emitter.registryFile()))
    if let samplesOut {
        outputs.append((samplesOut, emitter.samplesFile()))
    }
    let fm = FileManager.default
    for directory in [swiftOut, apiOut] + [samplesOut.map { ($0 as NSString).deletingLastPathComponent }].compactMap({ $0 }) {
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }
    for output in outputs {
        try Data(output.text.utf8).write(to: URL(fileURLWithPath: output.path))
    }
} catch {
    fail("\(error)")
}
