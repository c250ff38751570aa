/// A cheap look at how deeply YAML text nests, taken before a YAML composer (which recurses once
/// per level) sees the text, so that a hostile document is refused instead of exhausting the stack.
public enum YAMLNesting {
    /// The line where the nesting (block indentation, `- ` items and flow brackets) passes
    /// `maxDepth`, or nil when it never does.
    public static func lineBeyond(_ maxDepth: Int, in text: String) -> Int? {
        var indents: [Int] = []
        var flow = 0
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            var column = 0
            var dashes = 0
            var rest = Substring(line)
            while let first = rest.first, first == " " || first == "-" {
                if first == "-" {
                    let after = rest.dropFirst().first
                    guard after == nil || after == " " else { break }
                    dashes += 1
                }
                column += 1
                rest = rest.dropFirst()
            }
            if rest.isEmpty || rest.first == "#" { continue }
            if flow == 0 {
                while let last = indents.last, last >= column { indents.removeLast() }
                indents.append(column)
            }
            var quote: Character?
            var deepestFlow = flow
            for character in rest {
                if let open = quote {
                    if character == open { quote = nil }
                    continue
                }
                switch character {
                case "\"", "'": quote = character
                case "[", "{":
                    flow += 1
                    deepestFlow = max(deepestFlow, flow)
                case "]", "}": flow = max(0, flow - 1)
                case "#": break
                default: continue
                }
            }
            if indents.count + dashes + deepestFlow > maxDepth { return lineNumber }
        }
        return nil
    }
}
