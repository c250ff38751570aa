/// Splits text into search tokens, the same way for documents and queries.
///
/// A token is a run of letters, digits, marks and non-ASCII symbols (emoji), lowercased.
/// Everything else (white space, punctuation, ASCII symbols such as `*`, `-`, `"`, `(`) separates
/// tokens and is never interpreted: there is no query syntax, so any text is a valid query.
/// Tokens are cut at `maxTokenBytes` UTF-8 bytes (on a character boundary).
public enum Tokenizer {
    public static let maxTokenBytes = 48

    /// The tokens of `text`, in order (duplicates kept).
    public static func tokens(_ text: String) -> [String] {
        var result: [String] = []
        forEachToken(text) { result.append($0) }
        return result
    }

    /// Calls `body` with each token of `text`.
    public static func forEachToken(_ text: String, _ body: (String) -> Void) {
        var text = text
        text.makeContiguousUTF8()
        var isASCII = true
        text.utf8.withContiguousStorageIfAvailable { bytes in
            for byte in bytes where byte >= 0x80 {
                isASCII = false
                break
            }
        }
        if isASCII {
            asciiTokens(text, body)
        } else {
            unicodeTokens(text, body)
        }
    }

    /// The fast path: ASCII letters and digits, lowercased byte by byte.
    private static func asciiTokens(_ text: String, _ body: (String) -> Void) {
        text.utf8.withContiguousStorageIfAvailable { bytes in
            // The token being read, on the stack (no allocation per call).
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maxTokenBytes) { buffer in
                var length = 0
                for byte in bytes {
                    switch byte {
                    case 0x30...0x39, 0x61...0x7A:
                        if length < maxTokenBytes {
                            buffer[length] = byte
                            length += 1
                        }
                    case 0x41...0x5A:
                        if length < maxTokenBytes {
                            buffer[length] = byte | 0x20
                            length += 1
                        }
                    default:
                        if length > 0 {
                            body(String(decoding: UnsafeBufferPointer(rebasing: buffer[0..<length]), as: UTF8.self))
                            length = 0
                        }
                    }
                }
                if length > 0 { body(String(decoding: UnsafeBufferPointer(rebasing: buffer[0..<length]), as: UTF8.self)) }
            }
        }
    }

    private static func unicodeTokens(_ text: String, _ body: (String) -> Void) {
        var token = String.UnicodeScalarView()
        var bytes = 0
        func flush() {
            if !token.isEmpty {
                body(String(token))
                token = String.UnicodeScalarView()
                bytes = 0
            }
        }
        for scalar in text.unicodeScalars {
            if isTokenScalar(scalar) {
                let lowered: String.UnicodeScalarView
                if scalar.isASCII {
                    let value = scalar.value
                    lowered = String.UnicodeScalarView([(0x41...0x5A).contains(value) ? Unicode.Scalar(value | 0x20)! : scalar])
                } else {
                    lowered = scalar.properties.lowercaseMapping.unicodeScalars
                }
                let size = lowered.reduce(0) { $0 + UTF8.width($1) }
                if bytes + size <= maxTokenBytes {
                    token.append(contentsOf: lowered)
                    bytes += size
                }
            } else {
                flush()
            }
        }
        flush()
    }

    /// Letters, digits, marks, and symbols outside ASCII (emoji, currency signs, ...).
    static func isTokenScalar(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII {
            let value = scalar.value
            return (0x30...0x39).contains(value) || (0x41...0x5A).contains(value) || (0x61...0x7A).contains(value)
        }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .nonspacingMark, .spacingMark, .enclosingMark,
             .decimalNumber, .letterNumber, .otherNumber,
             .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            return true
        default:
            return false
        }
    }
}
