import AtomSkillFormat
import Foundation
import Testing

/// A schema from JSON text (tests write schemas the way manifests do).
private func schema(_ json: String) throws -> JSONSchema {
    try JSONSchema(try JSONValue.parse(json: json), field: "inputs")
}

private func violations(_ schemaJSON: String, _ valueJSON: String) throws -> [JSONSchema.Violation] {
    try schema(schemaJSON).violations(of: try JSONValue.parse(json: valueJSON))
}

@Suite("JSON Schema subset")
struct JSONSchemaTests {
    @Test("types: every name, integer as a whole number, lists of types")
    func types() throws {
        #expect(try violations(#"{"type":"object","properties":{"n":{"type":"integer"}}}"#, #"{"n":3}"#).isEmpty)
        #expect(try violations(#"{"type":"object","properties":{"n":{"type":"integer"}}}"#, #"{"n":3.0}"#).isEmpty)
        let fractional = try violations(#"{"type":"object","properties":{"n":{"type":"integer"}}}"#, #"{"n":2.5}"#)
        #expect(fractional == [.init(path: "inputs.n", keyword: "type", message: "expected an integer, got a number")])
        let wrong = try violations(#"{"type":"object","properties":{"text":{"type":"string"}}}"#, #"{"text":7}"#)
        #expect(wrong.map(\.description) == ["inputs.text: expected a string, got an integer (type)"])
        #expect(try violations(#"{"properties":{"v":{"type":["string","null"]}}}"#, #"{"v":null}"#).isEmpty)
        #expect(try violations(#"{"properties":{"v":{"type":["string","null"]}}}"#, #"{"v":"x"}"#).isEmpty)
        #expect(try violations(#"{"properties":{"v":{"type":["string","null"]}}}"#, #"{"v":true}"#).first?.keyword == "type")
        #expect(try violations(#"{"properties":{"v":{"type":"boolean"}}}"#, #"{"v":1}"#).first?.message == "expected a boolean, got an integer")
        #expect(try violations(#"{"properties":{"v":{"type":"number"}}}"#, #"{"v":1}"#).isEmpty)
        #expect(try violations(#"{"type":"object"}"#, #"[]"#).first?.description == "inputs: expected an object, got an array (type)")
    }

    @Test("objects: required, additionalProperties false or a schema, property counts")
    func objects() throws {
        let base = #"{"type":"object","properties":{"text":{"type":"string"},"n":{"type":"number"}},"required":["text","n"],"additionalProperties":false}"#
        #expect(try violations(base, #"{"text":"a","n":1}"#).isEmpty)
        #expect(try violations(base, #"{"n":1}"#).map(\.description) == [#"inputs: missing required property "text" (required)"#])
        let extra = try violations(base, #"{"text":"a","n":1,"nn":2}"#)
        #expect(extra.map(\.description) == [#"inputs.nn: property "nn" is not allowed; allowed: n, text (additionalProperties)"#])
        let typed = #"{"type":"object","additionalProperties":{"type":"integer"}}"#
        #expect(try violations(typed, #"{"a":1,"b":2}"#).isEmpty)
        #expect(try violations(typed, #"{"a":1,"b c":"x"}"#).map(\.path) == [#"inputs["b c"]"#])
        #expect(try violations(#"{"minProperties":1,"maxProperties":2}"#, #"{}"#).first?.keyword == "minProperties")
        #expect(try violations(#"{"minProperties":1,"maxProperties":2}"#, #"{"a":1,"b":2,"c":3}"#).first?.keyword == "maxProperties")
        // Several problems are all reported (up to the limit), in document order.
        let many = try violations(base, #"{"n":"x","zz":1}"#)
        #expect(many.map(\.keyword) == ["required", "type", "additionalProperties"])
    }

    @Test("arrays: items with their index in the path, counts, uniqueness")
    func arrays() throws {
        let list = #"{"properties":{"tags":{"type":"array","items":{"type":"string","minLength":1},"minItems":1,"maxItems":3,"uniqueItems":true}}}"#
        #expect(try violations(list, #"{"tags":["a","b"]}"#).isEmpty)
        #expect(try violations(list, #"{"tags":["a",""]}"#).map(\.description) == ["inputs.tags[1]: is 0 characters long; at least 1 (minLength)"])
        #expect(try violations(list, #"{"tags":[]}"#).first?.keyword == "minItems")
        #expect(try violations(list, #"{"tags":["a","b","c","d"]}"#).first?.keyword == "maxItems")
        #expect(try violations(list, #"{"tags":["a","a"]}"#).first?.description == "inputs.tags: items 0 and 1 are equal (uniqueItems)")
        let nested = #"{"properties":{"rows":{"type":"array","items":{"type":"object","required":["id"]}}}}"#
        #expect(try violations(nested, #"{"rows":[{"id":1},{}]}"#).first?.description == #"inputs.rows[1]: missing required property "id" (required)"#)
    }

    @Test("strings, numbers, enum and const")
    func scalars() throws {
        let text = #"{"properties":{"s":{"type":"string","minLength":2,"maxLength":4,"pattern":"^[a-z]+$"}}}"#
        #expect(try violations(text, #"{"s":"abc"}"#).isEmpty)
        #expect(try violations(#"{"properties":{"s":{"minLength":3,"maxLength":3}}}"#, #"{"s":"héé"}"#).isEmpty, "lengths count characters, not bytes")
        #expect(try violations(text, #"{"s":"a"}"#).first?.keyword == "minLength")
        #expect(try violations(text, #"{"s":"abcde"}"#).first?.keyword == "maxLength")
        #expect(try violations(text, #"{"s":"AB"}"#).first?.description == #"inputs.s: "AB" does not match the pattern "^[a-z]+$" (pattern)"#)
        let number = #"{"properties":{"x":{"type":"number","minimum":0,"maximum":10,"multipleOf":0.5}}}"#
        #expect(try violations(number, #"{"x":2.5}"#).isEmpty)
        #expect(try violations(number, #"{"x":-1}"#).first?.description == "inputs.x: -1 is less than the minimum 0 (minimum)")
        #expect(try violations(number, #"{"x":11}"#).first?.keyword == "maximum")
        #expect(try violations(number, #"{"x":0.3}"#).first?.keyword == "multipleOf")
        let exclusive = #"{"properties":{"x":{"exclusiveMinimum":0,"exclusiveMaximum":1}}}"#
        #expect(try violations(exclusive, #"{"x":0}"#).first?.keyword == "exclusiveMinimum")
        #expect(try violations(exclusive, #"{"x":1}"#).first?.keyword == "exclusiveMaximum")
        #expect(try violations(exclusive, #"{"x":0.5}"#).isEmpty)
        let choice = #"{"properties":{"unit":{"enum":["m","km"]},"v":{"const":1}}}"#
        #expect(try violations(choice, #"{"unit":"km","v":1}"#).isEmpty)
        #expect(try violations(choice, #"{"unit":"yd"}"#).first?.description == #"inputs.unit: "yd" is not one of "m", "km" (enum)"#)
        #expect(try violations(choice, #"{"v":2}"#).first?.keyword == "const")
    }

    @Test("allOf, anyOf, oneOf, not, and boolean schemas")
    func combinators() throws {
        let any = #"{"properties":{"v":{"anyOf":[{"type":"string"},{"type":"integer"}]}}}"#
        #expect(try violations(any, #"{"v":"a"}"#).isEmpty)
        #expect(try violations(any, #"{"v":1.5}"#).first?.keyword == "anyOf")
        let one = #"{"properties":{"v":{"oneOf":[{"type":"number"},{"type":"integer"}]}}}"#
        #expect(try violations(one, #"{"v":1.5}"#).isEmpty)
        #expect(try violations(one, #"{"v":1}"#).first?.message == "matches 2 of the 2 schemas; exactly one must match")
        let all = #"{"properties":{"v":{"allOf":[{"type":"integer"},{"minimum":3}]}}}"#
        #expect(try violations(all, #"{"v":2}"#).first?.keyword == "allOf[1].minimum")
        #expect(try violations(#"{"properties":{"v":{"not":{"type":"null"}}}}"#, #"{"v":null}"#).first?.keyword == "not")
        #expect(try violations(#"{"properties":{"v":false}}"#, #"{"v":1}"#).first?.path == "inputs.v")
        #expect(try violations(#"{"properties":{"v":true}}"#, #"{"v":1}"#).isEmpty)
    }

    @Test("a schema with an unsupported or malformed keyword is an error naming it")
    func badSchemas() throws {
        func error(_ json: String) -> SkillFormatError? {
            #expect(throws: SkillFormatError.self) { try schema(json) }
        }
        let reference = error(##"{"type":"object","properties":{"a":{"$ref":"#/$defs/a"}}}"##)
        #expect(reference?.field == "inputs.properties.a.$ref")
        #expect(reference?.message.contains("not a supported schema keyword") == true)
        #expect(error(#"{"patternProperties":{}}"#)?.field == "inputs.patternProperties")
        #expect(error(#"{"type":"strnig"}"#)?.message.contains("\"strnig\" is not a type") == true)
        #expect(error(#"{"required":"text"}"#)?.field == "inputs.required")
        #expect(error(#"{"properties":{"n":{"minimum":"3"}}}"#)?.field == "inputs.properties.n.minimum")
        #expect(error(#"{"properties":{"n":{"maxLength":-1}}}"#)?.field == "inputs.properties.n.maxLength")
        #expect(error(#"{"properties":{"s":{"pattern":"(["}}}"#)?.message.contains("not a valid regular expression") == true)
        #expect(error(#"{"properties":{"n":{"exclusiveMinimum":true}}}"#)?.message.contains("draft 6") == true)
        #expect(error(#"{"items":[{"type":"string"}]}"#)?.message.contains("tuple") == true)
        #expect(error(#"{"anyOf":[]}"#)?.field == "inputs.anyOf")
        #expect(error(#"{"properties":{"n":{"multipleOf":0}}}"#) != nil)
        // Annotations are accepted (and not checked).
        #expect(throws: Never.self) { try schema(#"{"title":"t","description":"d","$schema":"https://json-schema.org/draft/2020-12/schema","properties":{"d":{"type":"string","format":"date","default":"x","examples":["2024-01-01"]}}}"#) }
    }

    @Test("only {type: object} needs no check; anything more does")
    func trivial() throws {
        #expect(JSONSchema.anyObject.onlyRequiresObject)
        #expect(try schema(#"{"type":"object","description":"anything"}"#).onlyRequiresObject)
        #expect(try !schema(#"{"type":"object","required":["a"]}"#).onlyRequiresObject)
        #expect(try !schema(#"{"properties":{}}"#).onlyRequiresObject)
    }

    @Test("manifests: a bad schema keyword, and an example whose inputs break the schema, are manifest errors")
    func manifests() throws {
        let head = "name: s\nversion: \"1.0.0\"\ndescription: d\ncategory: text\nruntime: python\n"
        #expect(throws: SkillFormatError.self) { try SkillManifest.parse(head + "inputs: {type: object, properties: {a: {$ref: '#/x'}}}\n") }
        let example = #expect(throws: SkillFormatError.self) {
            try SkillManifest.parse(head + "inputs: {type: object, properties: {n: {type: integer}}}\nexamples:\n  - inputs: {n: 1.5}\n    expect: {}\n")
        }
        #expect(example?.field == "examples[0].inputs.n")
        #expect(example?.message.contains("expected an integer") == true)
        let manifest = try SkillManifest.parse(head + "inputs: {type: object, properties: {n: {type: integer, minimum: 1}}, required: [n]}\noutputs: {type: object, required: [r]}\n")
        #expect(manifest.inputSchema.violations(of: .object(["n": .number(0)])).first?.keyword == "minimum")
        #expect(manifest.outputSchema.violations(of: .object([:]), root: "outputs").first?.description == #"outputs: missing required property "r" (required)"#)
    }
}
