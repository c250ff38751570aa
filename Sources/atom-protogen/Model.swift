// The part of a FileDescriptorSet the generator uses, read with protobuf-c.

import CProtoDescriptor
import CProtobufC
import Foundation

struct GeneratorError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum ScalarType {
    case double, float, int64, uint64, int32, fixed64, fixed32, bool, uint32, sfixed32, sfixed64, sint32, sint64
}

enum FieldKind {
    case scalar(ScalarType)
    case string
    case bytes
    case enumeration(String)  // fully qualified proto name without the leading dot
    case message(String)
}

struct Field {
    var protoName: String
    var number: Int32
    var kind: FieldKind
    var repeated: Bool
    var comment: String?
}

struct EnumValue {
    var protoName: String
    var number: Int32
    var comment: String?
}

struct EnumDef {
    var fullName: String      // atom.v1.StatusCode
    var localName: String     // StatusCode
    var swiftPath: [String]   // ["StatusCode"], nested: ["Outer", "Inner"]
    var values: [EnumValue]
    var comment: String?
}

struct MessageDef {
    var fullName: String
    var localName: String
    var swiftPath: [String]
    var fields: [Field]
    var messages: [MessageDef]
    var enums: [EnumDef]
    var comment: String?
    var isNested: Bool { swiftPath.count > 1 }
}

struct MethodDef {
    var name: String
    var inputType: String
    var outputType: String
    var serverStreaming: Bool
    var comment: String?
}

struct ServiceDef {
    var name: String
    var fullName: String
    var methods: [MethodDef]
    var comment: String?
}

struct ProtoFile {
    var name: String        // atom/v1/echo.proto
    var package: String
    var messages: [MessageDef]
    var enums: [EnumDef]
    var services: [ServiceDef]
}

private func text(_ pointer: UnsafePointer<CChar>?) -> String {
    pointer.map { String(cString: $0) } ?? ""
}

private func list<T>(_ pointer: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ count: Int) -> [UnsafeMutablePointer<T>] {
    guard let pointer, count > 0 else { return [] }
    return (0..<count).compactMap { pointer[$0] }
}

/// Reads a FileDescriptorSet and checks that it uses only what the generator supports.
struct DescriptorReader {
    let displayPrefix: String  // "proto/" so that messages name proto/atom/v1/x.proto

    func read(_ bytes: [UInt8]) throws -> [ProtoFile] {
        guard let set = bytes.withUnsafeBufferPointer({
            google__protobuf__file_descriptor_set__unpack(nil, $0.count, $0.baseAddress)
        }) else {
            throw GeneratorError("the descriptor set is not a valid google.protobuf.FileDescriptorSet")
        }
        defer { google__protobuf__file_descriptor_set__free_unpacked(set, nil) }
        return try list(set.pointee.file, set.pointee.n_file).map { try readFile($0.pointee) }
    }

    private func readFile(_ file: Google__Protobuf__FileDescriptorProto) throws -> ProtoFile {
        let name = text(file.name)
        let where_ = displayPrefix + name
        let syntax = text(file.syntax)
        guard syntax == "proto3" else {
            throw GeneratorError("\(where_): syntax '\(syntax.isEmpty ? "proto2" : syntax)' is not supported; atom protos must be proto3")
        }
        let package = text(file.package)
        guard package == "atom.v1" else {
            throw GeneratorError("\(where_): package '\(package)' is not supported; every proto must be in package atom.v1")
        }
        if file.n_extension > 0 {
            throw GeneratorError("\(where_): extensions are not supported (extension '\(text(file.extension[0]!.pointee.name))')")
        }
        var comments: [[Int32]: String] = [:]
        if let info = file.source_code_info {
            for location in list(info.pointee.location, info.pointee.n_location) {
                let loc = location.pointee
                let path = Array(UnsafeBufferPointer(start: loc.path, count: loc.n_path))
                let comment = text(loc.leading_comments)
                if !comment.isEmpty { comments[path] = comment }
            }
        }
        let messages = try list(file.message_type, file.n_message_type).enumerated().map { index, message in
            try readMessage(message.pointee, parent: nil, path: [4, Int32(index)], file: where_, comments: comments)
        }
        let enums = try list(file.enum_type, file.n_enum_type).enumerated().map { index, enumeration in
            try readEnum(enumeration.pointee, parent: nil, path: [5, Int32(index)], file: where_, comments: comments)
        }
        let services = try list(file.service, file.n_service).enumerated().map { index, service in
            try readService(service.pointee, package: package, path: [6, Int32(index)], file: where_, comments: comments)
        }
        return ProtoFile(name: name, package: package, messages: messages, enums: enums, services: services)
    }

    private func readMessage(
        _ message: Google__Protobuf__DescriptorProto, parent: (fullName: String, swiftPath: [String])?,
        path: [Int32], file: String, comments: [[Int32]: String]
    ) throws -> MessageDef {
        let localName = text(message.name)
        let fullName = (parent?.fullName ?? "atom.v1") + "." + localName
        let swiftPath = (parent?.swiftPath ?? []) + [localName]
        if message.n_extension > 0 || message.n_extension_range > 0 {
            throw GeneratorError("\(file): message \(fullName): extensions are not supported")
        }
        let nestedDescriptors = list(message.nested_type, message.n_nested_type)
        let mapEntries = Set(nestedDescriptors.compactMap { nested -> String? in
            guard let options = nested.pointee.options, options.pointee.has_map_entry != 0,
                  options.pointee.map_entry != 0 else { return nil }
            return fullName + "." + text(nested.pointee.name)
        })
        var fields: [Field] = []
        for (index, fieldPointer) in list(message.field, message.n_field).enumerated() {
            let field = fieldPointer.pointee
            let fieldName = text(field.name)
            let describe = "\(file): field \(fullName).\(fieldName)"
            if field.has_proto3_optional != 0 && field.proto3_optional != 0 {
                throw GeneratorError("\(describe): proto3 `optional` is not supported")
            }
            if field.has_oneof_index != 0 {
                throw GeneratorError("\(describe): oneofs are not supported")
            }
            let label = field.label
            if label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REQUIRED {
                throw GeneratorError("\(describe): required fields are not supported")
            }
            let typeName = text(field.type_name).hasPrefix(".") ? String(text(field.type_name).dropFirst()) : text(field.type_name)
            let kind: FieldKind
            switch field.type {
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_DOUBLE: kind = .scalar(.double)
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FLOAT: kind = .scalar(.float)
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT64: kind = .scalar(.int64)
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT64: kind = .scalar(.uint64)
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32: kind = .scalar(.int32)
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED64: kind = .scalar(.fixed64)
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED32: kind = .scalar(.fixed32)
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BOOL: kind = .scalar(.bool)
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT32: kind = .scalar(.uint32)
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED32: kind = .scalar(.sfixed32)
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED64: kind = .scalar(.sfixed64)
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT32: kind = .scalar(.sint32)
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT64: kind = .scalar(.sint64)
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING: kind = .string
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES: kind = .bytes
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_ENUM: kind = .enumeration(typeName)
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE:
                if mapEntries.contains(typeName) {
                    throw GeneratorError("\(describe): map fields are not supported (use a repeated message)")
                }
                kind = .message(typeName)
            case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_GROUP:
                throw GeneratorError("\(describe): groups are not supported")
            default:
                throw GeneratorError("\(describe): unknown field type \(field.type.rawValue)")
            }
            fields.append(Field(
                protoName: fieldName, number: field.number, kind: kind,
                repeated: label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED,
                comment: comments[path + [2, Int32(index)]]
            ))
        }
        let nested = try nestedDescriptors.enumerated().map { index, nested in
            try readMessage(nested.pointee, parent: (fullName, swiftPath), path: path + [3, Int32(index)], file: file, comments: comments)
        }
        let enums = try list(message.enum_type, message.n_enum_type).enumerated().map { index, enumeration in
            try readEnum(enumeration.pointee, parent: (fullName, swiftPath), path: path + [4, Int32(index)], file: file, comments: comments)
        }
        return MessageDef(
            fullName: fullName, localName: localName, swiftPath: swiftPath, fields: fields,
            messages: nested, enums: enums, comment: comments[path]
        )
    }

    private func readEnum(
        _ enumeration: Google__Protobuf__EnumDescriptorProto, parent: (fullName: String, swiftPath: [String])?,
        path: [Int32], file: String, comments: [[Int32]: String]
    ) throws -> EnumDef {
        let localName = text(enumeration.name)
        let fullName = (parent?.fullName ?? "atom.v1") + "." + localName
        let values = list(enumeration.value, enumeration.n_value).enumerated().map { index, value in
            EnumValue(protoName: text(value.pointee.name), number: value.pointee.number, comment: comments[path + [2, Int32(index)]])
        }
        guard values.first?.number == 0 else {
            throw GeneratorError("\(file): enum \(fullName): the first value must be 0 in proto3")
        }
        return EnumDef(
            fullName: fullName, localName: localName, swiftPath: (parent?.swiftPath ?? []) + [localName],
            values: values, comment: comments[path]
        )
    }

    private func readService(
        _ service: Google__Protobuf__ServiceDescriptorProto, package: String,
        path: [Int32], file: String, comments: [[Int32]: String]
    ) throws -> ServiceDef {
        let name = text(service.name)
        let fullName = package + "." + name
        let methods = try list(service.method, service.n_method).enumerated().map { index, methodPointer in
            let method = methodPointer.pointee
            let methodName = text(method.name)
            if method.has_client_streaming != 0 && method.client_streaming != 0 {
                throw GeneratorError("\(file): method \(fullName).\(methodName): client-streaming and bidirectional methods are not supported")
            }
            func strip(_ s: String) -> String { s.hasPrefix(".") ? String(s.dropFirst()) : s }
            return MethodDef(
                name: methodName, inputType: strip(text(method.input_type)), outputType: strip(text(method.output_type)),
                serverStreaming: method.has_server_streaming != 0 && method.server_streaming != 0,
                comment: comments[path + [2, Int32(index)]]
            )
        }
        return ServiceDef(name: name, fullName: fullName, methods: methods, comment: comments[path])
    }
}
