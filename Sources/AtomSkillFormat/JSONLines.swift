/// The lines of a JSON Lines file, split on its bytes (splitting Characters would cost grapheme
/// breaking over the whole file), each checked for what no JSON text can hold before it is
/// decoded: invalid UTF-8 (decoding it would turn the bytes into U+FFFD and report that instead)
/// and NUL bytes (which no protobuf-c string can carry either).
public enum JSONLines {
    public struct Line: Sendable {
        /// From 1.
        public let number: Int
        /// The text, or why the line cannot be JSON text.
        public let text: Result<String, Problem>
    }

    public struct Problem: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Every line that is not blank (spaces, tabs and a CR of a CRLF line end only).
    public static func lines(of bytes: some Collection<UInt8>) -> [Line] {
        var lines: [Line] = []
        var number = 0
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            if line.allSatisfy(isBlank) { continue }
            lines.append(Line(number: number, text: text(of: line)))
        }
        return lines
    }

    /// A byte of a blank line.
    public static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
    }

    static func text(of line: some Collection<UInt8>) -> Result<String, Problem> {
        if let nul = line.firstIndex(of: 0) {
            return .failure(Problem(description: "invalid JSON: a NUL byte at byte \(line.distance(from: line.startIndex, to: nul) + 1)"))
        }
        guard let text = String(validating: line, as: UTF8.self) else {
            return .failure(Problem(description: "the line is not UTF-8 text"))
        }
        return .success(text)
    }
}
