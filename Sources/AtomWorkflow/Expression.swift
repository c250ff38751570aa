/// The condition language: small, safe, no eval.
///
/// ```
/// expr    := or
/// or      := and (("or" | "||") and)*
/// and     := not (("and" | "&&") not)*
/// not     := ("not" | "!") not | compare
/// compare := primary (("==" | "!=" | "<" | "<=" | ">" | ">=") primary)?
/// primary := number | 'text' | "text" | true | false | null | ${reference} | "(" expr ")"
/// ```
/// A condition is true when its value is truthy (not false, null, 0, "", [] or {}).
/// `==` and `!=` compare any two values (1 == 1.0); `<`, `<=`, `>`, `>=` compare two
/// numbers or two strings, anything else is an evaluation error that fails the step.
public indirect enum Expression: Sendable, Hashable {
    case literal(JSONValue)
    case reference(Reference)
    case not(Expression)
    case and(Expression, Expression)
    case or(Expression, Expression)
    case compare(Comparison, Expression, Expression)

    public enum Comparison: String, Sendable, Hashable {
        case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    }

    public static let maxLength = 4_096
    public static let maxDepth = 32

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let message: String
        /// Character offset in the condition.
        public let position: Int
        public var description: String { "\(message) at position \(position + 1)" }
    }

    /// Parses a condition.
    public static func parse(_ text: String) throws(ParseError) -> Expression {
        guard text.utf8.count <= maxLength else { throw ParseError(message: "the condition is longer than \(maxLength) bytes", position: 0) }
        var parser = ExpressionParser(tokens: try ExpressionLexer.tokens(Array(text.unicodeScalars)))
        let expression = try parser.parseOr(depth: 0)
        guard parser.index == parser.tokens.count else {
            throw ParseError(message: "unexpected \(parser.tokens[parser.index].kind.display)", position: parser.tokens[parser.index].position)
        }
        return expression
    }

    /// Every reference in the expression.
    public var references: [Reference] {
        switch self {
        case .literal: []
        case .reference(let reference): [reference]
        case .not(let inner): inner.references
        case .and(let left, let right), .or(let left, let right), .compare(_, let left, let right): left.references + right.references
        }
    }

    public struct EvaluationError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// The expression's value.
    func evaluate(in scope: some ReferenceScope) throws -> JSONValue {
        switch self {
        case .literal(let value): return value
        case .reference(let reference): return try reference.resolve(in: scope)
        case .not(let inner): return .bool(!(try inner.evaluate(in: scope).isTruthy))
        case .and(let left, let right):
            return .bool(try left.evaluate(in: scope).isTruthy && (try right.evaluate(in: scope).isTruthy))
        case .or(let left, let right):
            return .bool(try left.evaluate(in: scope).isTruthy || (try right.evaluate(in: scope).isTruthy))
        case .compare(let comparison, let leftExpression, let rightExpression):
            let left = try leftExpression.evaluate(in: scope)
            let right = try rightExpression.evaluate(in: scope)
            switch comparison {
            case .equal: return .bool(Self.equal(left, right))
            case .notEqual: return .bool(!Self.equal(left, right))
            default:
                let order: Int
                if let a = left.numberValue, let b = right.numberValue {
                    order = a < b ? -1 : (a > b ? 1 : 0)
                } else if case .string(let a) = left, case .string(let b) = right {
                    order = a < b ? -1 : (a > b ? 1 : 0)
                } else {
                    throw EvaluationError(description: "cannot compare \(left.typeName) \(comparison.rawValue) \(right.typeName): only numbers with numbers and strings with strings")
                }
                switch comparison {
                case .less: return .bool(order < 0)
                case .lessOrEqual: return .bool(order <= 0)
                case .greater: return .bool(order > 0)
                default: return .bool(order >= 0)
                }
            }
        }
    }

    static func equal(_ left: JSONValue, _ right: JSONValue) -> Bool {
        if let a = left.numberValue, let b = right.numberValue { return a == b }
        return left == right
    }
}

struct ExpressionToken {
    enum Kind: Equatable {
        case value(JSONValue)
        case reference(Reference)
        case op(String)
        case open, close

        var display: String {
            switch self {
            case .value(let value): "value \(value.canonicalText)"
            case .reference(let reference): "reference \(reference)"
            case .op(let op): "'\(op)'"
            case .open: "'('"
            case .close: "')'"
            }
        }
    }

    let kind: Kind
    let position: Int
}

enum ExpressionLexer {
    static func tokens(_ scalars: [Unicode.Scalar]) throws(Expression.ParseError) -> [ExpressionToken] {
        var tokens: [ExpressionToken] = []
        var index = 0
        func error(_ message: String, _ at: Int) -> Expression.ParseError { Expression.ParseError(message: message, position: at) }
        while index < scalars.count {
            let scalar = scalars[index]
            let start = index
            switch scalar {
            case " ", "\t", "\n", "\r":
                index += 1
            case "(":
                tokens.append(ExpressionToken(kind: .open, position: start)); index += 1
            case ")":
                tokens.append(ExpressionToken(kind: .close, position: start)); index += 1
            case "=", "!", "<", ">", "&", "|":
                let next = index + 1 < scalars.count ? scalars[index + 1] : " "
                let pair = String(scalar) + String(next)
                if ["==", "!=", "<=", ">=", "&&", "||"].contains(pair) {
                    tokens.append(ExpressionToken(kind: .op(pair == "&&" ? "and" : pair == "||" ? "or" : pair), position: start))
                    index += 2
                } else if scalar == "<" || scalar == ">" {
                    tokens.append(ExpressionToken(kind: .op(String(scalar)), position: start)); index += 1
                } else if scalar == "!" {
                    tokens.append(ExpressionToken(kind: .op("not"), position: start)); index += 1
                } else {
                    throw error(scalar == "=" ? "'=' is not an operator; use '=='" : "'\(scalar)' is not an operator; use '\(scalar)\(scalar)'", start)
                }
            case "'", "\"":
                var text = String.UnicodeScalarView()
                index += 1
                var closed = false
                while index < scalars.count {
                    let character = scalars[index]
                    if character == "\\", index + 1 < scalars.count {
                        text.append(scalars[index + 1])
                        index += 2
                        continue
                    }
                    if character == scalar {
                        closed = true
                        index += 1
                        break
                    }
                    text.append(character)
                    index += 1
                }
                guard closed else { throw error("unterminated string", start) }
                tokens.append(ExpressionToken(kind: .value(.string(String(text))), position: start))
            case "$":
                guard index + 1 < scalars.count, scalars[index + 1] == "{" else { throw error("'$' starts a reference like ${inputs.x}", start) }
                var close = index + 2
                while close < scalars.count, scalars[close] != "}" { close += 1 }
                guard close < scalars.count else { throw error("${ without a closing }", start) }
                var body = String.UnicodeScalarView()
                body.append(contentsOf: scalars[(index + 2)..<close])
                switch Reference.parse(Substring(String(body)).trimmingSpaces) {
                case .success(let reference): tokens.append(ExpressionToken(kind: .reference(reference), position: start))
                case .failure(let failure): throw error(failure.description, start)
                }
                index = close + 1
            case "0"..."9", "-", ".":
                var end = index + 1
                while end < scalars.count, ("0"..."9").contains(scalars[end]) || scalars[end] == "." || scalars[end] == "e" || scalars[end] == "E"
                    || ((scalars[end] == "-" || scalars[end] == "+") && (scalars[end - 1] == "e" || scalars[end - 1] == "E")) {
                    end += 1
                }
                var text = String.UnicodeScalarView()
                text.append(contentsOf: scalars[index..<end])
                let literal = String(text)
                if let integer = Int64(literal) {
                    tokens.append(ExpressionToken(kind: .value(.int(integer)), position: start))
                } else if let double = Double(literal), double.isFinite {
                    tokens.append(ExpressionToken(kind: .value(.double(double)), position: start))
                } else {
                    throw error("\"\(literal)\" is not a number", start)
                }
                index = end
            default:
                guard scalar.properties.isAlphabetic || scalar == "_" else { throw error("unexpected character '\(scalar)'", start) }
                var end = index + 1
                while end < scalars.count, scalars[end].properties.isAlphabetic || ("0"..."9").contains(scalars[end]) || scalars[end] == "_" {
                    end += 1
                }
                var text = String.UnicodeScalarView()
                text.append(contentsOf: scalars[index..<end])
                let word = String(text)
                switch word {
                case "true": tokens.append(ExpressionToken(kind: .value(.bool(true)), position: start))
                case "false": tokens.append(ExpressionToken(kind: .value(.bool(false)), position: start))
                case "null": tokens.append(ExpressionToken(kind: .value(.null), position: start))
                case "and", "or", "not": tokens.append(ExpressionToken(kind: .op(word), position: start))
                default:
                    throw error("unknown word \"\(word)\"; use ${inputs.\(word)} or ${steps.ID.output...} for values, 'text' for strings", start)
                }
                index = end
            }
        }
        return tokens
    }
}

struct ExpressionParser {
    let tokens: [ExpressionToken]
    var index = 0

    init(tokens: [ExpressionToken]) { self.tokens = tokens }

    var endPosition: Int { tokens.last.map { $0.position + 1 } ?? 0 }

    func peekOp() -> String? {
        guard index < tokens.count, case .op(let op) = tokens[index].kind else { return nil }
        return op
    }

    mutating func parseOr(depth: Int) throws(Expression.ParseError) -> Expression {
        guard depth < Expression.maxDepth else {
            throw Expression.ParseError(message: "nested more than \(Expression.maxDepth) levels deep", position: index < tokens.count ? tokens[index].position : endPosition)
        }
        var left = try parseAnd(depth: depth)
        while peekOp() == "or" {
            index += 1
            left = .or(left, try parseAnd(depth: depth))
        }
        return left
    }

    mutating func parseAnd(depth: Int) throws(Expression.ParseError) -> Expression {
        var left = try parseNot(depth: depth)
        while peekOp() == "and" {
            index += 1
            left = .and(left, try parseNot(depth: depth))
        }
        return left
    }

    mutating func parseNot(depth: Int) throws(Expression.ParseError) -> Expression {
        if peekOp() == "not" {
            guard depth < Expression.maxDepth else { throw Expression.ParseError(message: "too many 'not's", position: tokens[index].position) }
            index += 1
            return .not(try parseNot(depth: depth + 1))
        }
        return try parseCompare(depth: depth)
    }

    mutating func parseCompare(depth: Int) throws(Expression.ParseError) -> Expression {
        let left = try parsePrimary(depth: depth)
        if let op = peekOp(), let comparison = Expression.Comparison(rawValue: op) {
            index += 1
            let right = try parsePrimary(depth: depth)
            if let next = peekOp(), Expression.Comparison(rawValue: next) != nil {
                throw Expression.ParseError(message: "comparisons do not chain; use 'and'", position: tokens[index].position)
            }
            return .compare(comparison, left, right)
        }
        return left
    }

    mutating func parsePrimary(depth: Int) throws(Expression.ParseError) -> Expression {
        guard index < tokens.count else { throw Expression.ParseError(message: "the condition ends where a value was expected", position: endPosition) }
        let token = tokens[index]
        index += 1
        switch token.kind {
        case .value(let value): return .literal(value)
        case .reference(let reference): return .reference(reference)
        case .open:
            let inner = try parseOr(depth: depth + 1)
            guard index < tokens.count, tokens[index].kind == .close else {
                throw Expression.ParseError(message: "'(' without a matching ')'", position: token.position)
            }
            index += 1
            return inner
        case .close, .op:
            throw Expression.ParseError(message: "expected a value, got \(token.kind.display)", position: token.position)
        }
    }
}
