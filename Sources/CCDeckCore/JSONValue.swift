import Foundation

/// A JSON value of any shape: tool inputs and tool results are free-form.
public enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n): try c.encode(n)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// Beyond 2^53 - 1 a Double skips integers: a JSON number that large may have lost digits.
    public static let maxExactInteger = (1 << 53) - 1

    /// The value as an Int when it is a whole number within `range`; nil for any other value.
    public func wholeNumber(in range: ClosedRange<Int>) -> Int? {
        guard case .number(let n) = self else { return nil }
        return n.wholeNumber(in: range)
    }

    /// A whole document read with ccdeck's own scanner: unlike JSONDecoder, a number too large for
    /// a Double becomes an infinity for the reader to refuse instead of failing the whole document.
    public static func parse(_ data: Data) -> JSONValue? {
        data.withUnsafeBytes { raw in
            // A UTF-8 byte order mark is no JSON, but some editors save one.
            let bom = raw.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
            var scanner = JSONScanner(UnsafeRawBufferPointer(rebasing: raw[bom...]))
            guard let value = try? scanner.value(), scanner.atEnd else { return nil }
            return value
        }
    }

    /// Plain text of a value: strings as they are, arrays of text blocks joined.
    public var text: String {
        switch self {
        case .null: return ""
        case .bool(let b): return String(b)
        case .number(let n): return n.wholeNumber(in: -Self.maxExactInteger...Self.maxExactInteger).map(String.init) ?? String(n)
        case .string(let s): return s
        case .array(let a): return a.map { $0["text"]?.text ?? $0.text }.joined(separator: "\n")
        case .object(let o): return o["text"]?.text ?? ""
        }
    }
}

extension Double {
    /// The value as an Int when it is whole and within `range`; nil for fractions, NaN, infinities and
    /// anything out of range. Numbers from outside ccdeck go through this, never through `Int(_:)`, which traps.
    public func wholeNumber(in range: ClosedRange<Int>) -> Int? {
        guard let i = Int(exactly: self), range.contains(i) else { return nil }
        return i
    }
}
