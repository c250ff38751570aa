// Swift and protoc-c names.

enum Naming {
    static let swiftKeywords: Set<String> = [
        "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init",
        "inout", "internal", "let", "open", "operator", "private", "precedencegroup", "protocol", "public",
        "rethrows", "static", "struct", "subscript", "typealias", "var", "break", "case", "catch", "continue",
        "default", "defer", "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return", "throw",
        "switch", "where", "while", "Any", "as", "await", "false", "is", "nil", "self", "Self", "super", "throws",
        "true", "try", "_", "package", "consume", "borrowing", "consuming", "some", "any", "Type", "Protocol",
    ]

    /// protoc-c's C++ keyword list: a field named like one of these gets a trailing `_` in C.
    static let cKeywords: Set<String> = [
        "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break", "case", "catch", "char", "class",
        "compl", "const", "const_cast", "continue", "default", "delete", "do", "double", "dynamic_cast", "else",
        "enum", "explicit", "extern", "false", "float", "for", "friend", "goto", "if", "inline", "int", "long",
        "mutable", "namespace", "new", "not", "not_eq", "operator", "or", "or_eq", "private", "protected",
        "public", "register", "reinterpret_cast", "return", "short", "signed", "sizeof", "static",
        "static_cast", "struct", "switch", "template", "this", "throw", "true", "try", "typedef", "typeid",
        "typename", "union", "unsigned", "using", "virtual", "void", "volatile", "wchar_t", "while", "xor",
        "xor_eq",
    ]

    static func escaped(_ name: String) -> String {
        swiftKeywords.contains(name) ? "`\(name)`" : name
    }

    /// An argument label: only these keywords need backticks there.
    static func label(_ name: String) -> String {
        ["inout", "var", "let"].contains(name) ? "`\(name)`" : name
    }

    /// `call_id` -> `callId`, `URLPath` -> `urlPath`.
    static func lowerCamel(fromSnake name: String) -> String {
        let parts = name.split(separator: "_").map(String.init)
        guard let first = parts.first else { return name }
        var out = lowerCamel(fromUpperCamel: first)
        for part in parts.dropFirst() {
            out += part.prefix(1).uppercased() + part.dropFirst()
        }
        if let first = out.first, first.isNumber { out = "_" + out }
        return out
    }

    /// `ListServices` -> `listServices`, `RPCStatus` -> `rpcStatus`.
    static func lowerCamel(fromUpperCamel name: String) -> String {
        let characters = Array(name)
        var prefixLength = 0
        while prefixLength < characters.count, characters[prefixLength].isUppercase { prefixLength += 1 }
        if prefixLength == 0 { return name }
        // Lowercase the leading run of capitals, but keep the capital that starts the next word.
        let lowered = prefixLength > 1 && prefixLength < characters.count ? prefixLength - 1 : prefixLength
        return String(characters[..<lowered]).lowercased() + String(characters[lowered...])
    }

    /// `STATUS_CODE_INVALID_ARGUMENT` in `StatusCode` -> `invalidArgument`.
    static func enumCase(_ valueName: String, enumName: String) -> String {
        let prefix = upperSnake(enumName) + "_"
        var stripped = valueName
        if valueName.hasPrefix(prefix), valueName.count > prefix.count {
            stripped = String(valueName.dropFirst(prefix.count))
        }
        let parts = stripped.split(separator: "_").map(String.init)
        var out = ""
        for (index, part) in parts.enumerated() {
            let lower = part.lowercased()
            out += index == 0 ? lower : lower.prefix(1).uppercased() + lower.dropFirst()
        }
        if let first = out.first, first.isNumber { out = "_" + out }
        return out
    }

    /// `StatusCode` -> `STATUS_CODE`, `RPCStatus` -> `RPC_STATUS`.
    static func upperSnake(_ name: String) -> String {
        let characters = Array(name)
        var out = ""
        for (index, character) in characters.enumerated() {
            if character.isUppercase, index > 0 {
                let previous = characters[index - 1]
                let next: Character? = index + 1 < characters.count ? characters[index + 1] : nil
                if previous.isLowercase || previous.isNumber || (previous.isUppercase && (next?.isLowercase ?? false)) {
                    out += "_"
                }
            }
            out += character.uppercased()
        }
        return out
    }

    /// protoc-c's CamelToLower: `_` before a capital that follows a non-capital, then lowercase.
    static func cLower(_ name: String) -> String {
        var out = ""
        var wasUpper = true
        for character in name {
            let isUpper = character.isASCII && character.isUppercase
            if isUpper {
                if !wasUpper { out += "_" }
                out += character.lowercased()
            } else {
                out.append(character)
            }
            wasUpper = isUpper
        }
        return out
    }

    /// protoc-c's type name: `atom.v1.WorkflowPlan.Level` -> `Atom__V1__WorkflowPlan__Level`.
    static func cType(_ fullName: String, package: String) -> String {
        let packageParts = package.split(separator: ".").map { $0.prefix(1).uppercased() + $0.dropFirst() }
        let local = fullName.dropFirst(package.count + 1).split(separator: ".").map(String.init)
        return (packageParts + local).joined(separator: "__")
    }

    /// protoc-c's function prefix: `atom.v1.WorkflowPlan.Level` -> `atom__v1__workflow_plan__level`.
    static func cFunction(_ fullName: String, package: String) -> String {
        let packageParts = package.split(separator: ".").map { $0.lowercased() }
        let local = fullName.dropFirst(package.count + 1).split(separator: ".").map { cLower(String($0)) }
        return (packageParts + local).joined(separator: "__")
    }

    /// protoc-c's struct member name for a field.
    static func cField(_ protoName: String) -> String {
        let lower = protoName.lowercased()
        let name = cKeywords.contains(lower) ? lower + "_" : lower
        return escaped(name)
    }
}
