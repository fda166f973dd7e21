/// A `.env` file: `KEY=value` lines, `export` prefixes, `#` comments, single quotes
/// (literal) and double quotes (with `\n`, `\t`, `\"`, `\\` escapes, may span lines).
///
/// Errors name the line and the problem but never echo the line: it may hold a secret.
public struct Dotenv: Sendable, Equatable {
    public var values: [String: String]
    /// Keys in file order (a later duplicate wins, as in shells).
    public var keys: [String]

    public struct ParseError: Error, Equatable, CustomStringConvertible, Sendable {
        public var line: Int
        public var problem: String

        public init(line: Int, problem: String) {
            self.line = line
            self.problem = problem
        }

        public var description: String { "line \(line): \(problem)" }
    }

    public subscript(key: String) -> String? { values[key] }

    public static func parse(_ text: String) throws(ParseError) -> Dotenv {
        var values: [String: String] = [:]
        var keys: [String] = []
        let lines = text.lineSlices
        var index = 0
        while index < lines.count {
            let lineNumber = index + 1
            var rest = lines[index].drop(while: { $0 == " " || $0 == "\t" })
            index += 1
            if rest.isEmpty || rest.first == "#" { continue }
            if rest.hasPrefix("export ") || rest.hasPrefix("export\t") {
                rest = rest.dropFirst(7).drop(while: { $0 == " " || $0 == "\t" })
            }
            guard let eq = rest.firstIndex(of: "=") else {
                throw ParseError(line: lineNumber, problem: "expected KEY=value")
            }
            let key = String(rest[..<eq]).trimmingTrailingBlanks
            guard isValidKey(key) else {
                throw ParseError(line: lineNumber, problem: key.isEmpty ? "missing variable name before '='"
                                                                      : "invalid variable name")
            }
            var value = rest[rest.index(after: eq)...].drop(while: { $0 == " " || $0 == "\t" })
            let parsed: String
            switch value.first {
            case "'":
                value = value.dropFirst()
                guard let close = value.firstIndex(of: "'") else {
                    throw ParseError(line: lineNumber, problem: "unterminated single quote")
                }
                parsed = String(value[..<close])
                try checkTrailer(value[value.index(after: close)...], line: lineNumber)
            case "\"":
                var buffer = String()
                var body = value.dropFirst()
                var closed = false
                while true {
                    var escaped = false
                    var i = body.startIndex
                    while i < body.endIndex {
                        let ch = body[i]
                        if escaped {
                            switch ch {
                            case "n": buffer.append("\n")
                            case "t": buffer.append("\t")
                            case "r": buffer.append("\r")
                            default: buffer.append(ch)
                            }
                            escaped = false
                        } else if ch == "\\" {
                            escaped = true
                        } else if ch == "\"" {
                            closed = true
                            break
                        } else {
                            buffer.append(ch)
                        }
                        i = body.index(after: i)
                    }
                    if closed {
                        try checkTrailer(body[body.index(after: i)...], line: lineNumber)
                        break
                    }
                    guard index < lines.count else {
                        throw ParseError(line: lineNumber, problem: "unterminated double quote")
                    }
                    buffer.append("\n")
                    body = lines[index]
                    index += 1
                }
                parsed = buffer
            default:
                // Unquoted: an inline comment starts at " #".
                var end = value.endIndex
                var i = value.startIndex
                while i < value.endIndex {
                    if value[i] == "#", i == value.startIndex || value[value.index(before: i)] == " "
                        || value[value.index(before: i)] == "\t" {
                        end = i
                        break
                    }
                    i = value.index(after: i)
                }
                parsed = String(value[..<end]).trimmingTrailingBlanks
            }
            // An environment variable ends at its first NUL: the token would arrive cut short.
            guard !parsed.unicodeScalars.contains("\0") else {
                throw ParseError(line: lineNumber, problem: "the value holds a NUL byte, which no environment variable can carry")
            }
            if values[key] == nil { keys.append(key) }
            values[key] = parsed
        }
        return Dotenv(values: values, keys: keys)
    }

    private static func checkTrailer(_ rest: Substring, line: Int) throws(ParseError) {
        let trailer = rest.drop(while: { $0 == " " || $0 == "\t" })
        if !trailer.isEmpty && trailer.first != "#" {
            throw ParseError(line: line, problem: "unexpected text after closing quote")
        }
    }

    private static func isValidKey(_ key: String) -> Bool {
        func isLetter(_ c: Unicode.Scalar) -> Bool { ("A"..."Z").contains(c) || ("a"..."z").contains(c) || c == "_" }
        guard let first = key.unicodeScalars.first, isLetter(first) else { return false }
        return key.unicodeScalars.allSatisfy { isLetter($0) || ("0"..."9").contains($0) || $0 == "." }
    }
}

extension String {
    var trimmingTrailingBlanks: String {
        var s = self[...]
        while let last = s.last, last == " " || last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
