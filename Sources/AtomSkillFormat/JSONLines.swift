public import Foundation

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
    public static func lines(of data: Data) -> [Line] {
        data.withUnsafeBytes { lines(of: $0.bindMemory(to: UInt8.self)) }
    }

    public static func lines(of bytes: [UInt8]) -> [Line] {
        bytes.withUnsafeBufferPointer { lines(of: $0) }
    }

    public static func lines(of text: String) -> [Line] {
        var text = text
        return text.withUTF8 { lines(of: $0) }
    }

    /// Over contiguous bytes, with `memchr`: the bundles the marketplace imports hold 100,000
    /// lines, and a generic walk over a collection costs several times the split itself.
    public static func lines(of bytes: UnsafeBufferPointer<UInt8>) -> [Line] {
        var lines: [Line] = []
        var start = 0
        var number = 0
        while start <= bytes.count {
            var end = bytes.count
            if start < bytes.count, let base = bytes.baseAddress,
               let newline = memchr(base + start, Int32(UInt8(ascii: "\n")), bytes.count - start) {
                end = base.distance(to: newline.assumingMemoryBound(to: UInt8.self))
            }
            number += 1
            let line = UnsafeBufferPointer(rebasing: bytes[start..<end])
            if !line.allSatisfy(isBlank) { lines.append(Line(number: number, text: text(of: line))) }
            start = end + 1
        }
        return lines
    }

    /// A byte of a blank line.
    public static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
    }

    static func text(of line: UnsafeBufferPointer<UInt8>) -> Result<String, Problem> {
        if let base = line.baseAddress, let nul = memchr(base, 0, line.count) {
            let offset = base.distance(to: nul.assumingMemoryBound(to: UInt8.self))
            return .failure(Problem(description: "invalid JSON: a NUL byte at byte \(offset + 1)"))
        }
        guard let text = String(validating: line, as: UTF8.self) else {
            return .failure(Problem(description: "the line is not UTF-8 text"))
        }
        return .success(text)
    }
}
