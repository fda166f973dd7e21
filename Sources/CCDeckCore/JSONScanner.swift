/// A forward-only JSON reader over bytes: reads the values asked for, skips the rest without
/// building them. The stream-json parser uses it because a run can print hundreds of thousands
/// of lines and ccdeck needs a dozen fields of each.
///
/// Strict where it matters (strings, nesting, structure); malformed input throws.
struct JSONScanner {
    struct Malformed: Error {}

    private let bytes: UnsafeRawBufferPointer
    private(set) var index = 0
    private var depth = 0
    static let maxDepth = 256

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var atEnd: Bool {
        mutating get {
            skipWhitespace()
            return index >= bytes.count
        }
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            let b = bytes[index]
            guard b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 else { return }
            index += 1
        }
    }

    mutating func peek() -> UInt8? {
        skipWhitespace()
        return index < bytes.count ? bytes[index] : nil
    }

    private mutating func expect(_ b: UInt8) throws(Malformed) {
        guard peek() == b else { throw Malformed() }
        index += 1
    }

    /// Calls `body` with each key (its raw bytes, escapes undecoded); `body` must consume the value.
    mutating func object(_ body: (UnsafeRawBufferPointer, inout JSONScanner) throws(Malformed) -> Void) throws(Malformed) {
        try expect(UInt8(ascii: "{"))
        depth += 1
        guard depth <= Self.maxDepth else { throw Malformed() }
        if peek() == UInt8(ascii: "}") { index += 1; depth -= 1; return }
        while true {
            guard peek() == UInt8(ascii: "\"") else { throw Malformed() }
            let key = try rawString()
            try expect(UInt8(ascii: ":"))
            try body(key, &self)
            switch peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; depth -= 1; return
            default: throw Malformed()
            }
        }
    }

    mutating func array(_ body: (inout JSONScanner) throws(Malformed) -> Void) throws(Malformed) {
        try expect(UInt8(ascii: "["))
        depth += 1
        guard depth <= Self.maxDepth else { throw Malformed() }
        if peek() == UInt8(ascii: "]") { index += 1; depth -= 1; return }
        while true {
            try body(&self)
            switch peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"): index += 1; depth -= 1; return
            default: throw Malformed()
            }
        }
    }

    /// The bytes between the quotes of a string, escapes left as they are; validates the string.
    private mutating func rawString() throws(Malformed) -> UnsafeRawBufferPointer {
        try expect(UInt8(ascii: "\""))
        let start = index
        // Eight bytes at a time while none is a quote, a backslash or a control character.
        if let base = bytes.baseAddress {
            while index + 8 <= bytes.count {
                let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                if Self.hasSpecialByte(word) { break }
                index += 8
            }
        }
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
                index += 1
                return raw
            }
            if b == UInt8(ascii: "\\") {
                guard index + 1 < bytes.count else { throw Malformed() }
                switch bytes[index + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 2
                case UInt8(ascii: "u"):
                    guard index + 6 <= bytes.count else { throw Malformed() }
                    for k in 2..<6 where !Self.isHex(bytes[index + k]) { throw Malformed() }
                    index += 6
                default:
                    throw Malformed()
                }
                continue
            }
            if b < 0x20 { throw Malformed() }  // JSON forbids raw control characters in strings
            index += 1
        }
        throw Malformed()
    }

    /// True when some byte of `x` is `"`, `\\` or below 0x20 (the classic SWAR zero-byte tests).
    @inline(__always)
    static func hasSpecialByte(_ x: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        func hasZero(_ v: UInt64) -> Bool { (v &- ones) & ~v & highs != 0 }
        let quote = x ^ (ones &* 0x22)
        let backslash = x ^ (ones &* 0x5C)
        let below20 = (x &- ones &* 0x20) & ~x & highs != 0
        return hasZero(quote) || hasZero(backslash) || below20
    }

    static func isHex(_ c: UInt8) -> Bool {
        (0x30...0x39).contains(c) || (0x41...0x46).contains(c) || (0x61...0x66).contains(c)
    }

    mutating func string() throws(Malformed) -> String {
        let raw = try rawString()
        guard raw.contains(UInt8(ascii: "\\")) else { return String(decoding: raw, as: UTF8.self) }
        return try Self.unescape(raw)
    }

    /// The string if the next value is one; any other value is skipped and gives nil.
    mutating func stringIfPresent() throws(Malformed) -> String? {
        if peek() == UInt8(ascii: "\"") { return try string() }
        try skipValue()
        return nil
    }

    mutating func numberIfPresent() throws(Malformed) -> Double? {
        guard let b = peek(), b == UInt8(ascii: "-") || (b >= 0x30 && b <= 0x39) else {
            try skipValue()
            return nil
        }
        return try number()
    }

    /// A whole number within `range` if the next value is one; fractions, infinities, numbers out of
    /// range and other types are skipped and give nil (never a trap: these numbers come from outside).
    mutating func intIfPresent(in range: ClosedRange<Int>) throws(Malformed) -> Int? {
        try numberIfPresent()?.wholeNumber(in: range)
    }

    mutating func boolIfPresent() throws(Malformed) -> Bool? {
        if literal("true") { return true }
        if literal("false") { return false }
        try skipValue()
        return nil
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        skipWhitespace()
        let n = word.utf8CodeUnitCount
        guard index + n <= bytes.count else { return false }
        for k in 0..<n where bytes[index + k] != word.utf8Start[k] { return false }
        index += n
        return true
    }

    /// The bytes of a number, validated loosely (digits, sign, point, exponent).
    private mutating func numberBytes() throws(Malformed) -> Range<Int> {
        skipWhitespace()
        let start = index
        while index < bytes.count {
            let b = bytes[index]
            guard (b >= 0x30 && b <= 0x39) || b == UInt8(ascii: "-") || b == UInt8(ascii: "+") || b == UInt8(ascii: ".")
                || b == UInt8(ascii: "e") || b == UInt8(ascii: "E") else { break }
            index += 1
        }
        guard index > start else { throw Malformed() }
        return start..<index
    }

    /// Up to this many bytes an integer fits an Int64 and a Double exactly: the fast path can neither overflow nor round.
    static let fastPathBytes = 15

    private mutating func number() throws(Malformed) -> Double {
        let range = try numberBytes()
        // Integers (most numbers in stream-json) without a detour through String and strtod.
        var value: Int64 = 0
        var negative = false
        var simple = range.count <= Self.fastPathBytes
        for i in range where simple {
            let b = bytes[i]
            if i == range.lowerBound && b == UInt8(ascii: "-") { negative = true; continue }
            if b >= 0x30 && b <= 0x39 { value = value * 10 + Int64(b - 0x30) } else { simple = false }
        }
        if simple && !(negative && range.count == 1) { return Double(negative ? -value : value) }
        guard let d = Double(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)) else {
            throw Malformed()
        }
        return d
    }

    mutating func skipValue() throws(Malformed) {
        switch peek() {
        case UInt8(ascii: "\"")?: _ = try rawString()
        case UInt8(ascii: "{")?: try object { _, s throws(Malformed) in try s.skipValue() }
        case UInt8(ascii: "[")?: try array { s throws(Malformed) in try s.skipValue() }
        case UInt8(ascii: "t")?: guard literal("true") else { throw Malformed() }
        case UInt8(ascii: "f")?: guard literal("false") else { throw Malformed() }
        case UInt8(ascii: "n")?: guard literal("null") else { throw Malformed() }
        case nil: throw Malformed()
        default: _ = try numberBytes()
        }
    }

    mutating func value() throws(Malformed) -> JSONValue {
        switch peek() {
        case UInt8(ascii: "\"")?: return .string(try string())
        case UInt8(ascii: "{")?:
            var o: [String: JSONValue] = [:]
            try object { key, s throws(Malformed) in o[try Self.keyString(key)] = try s.value() }
            return .object(o)
        case UInt8(ascii: "[")?:
            var a: [JSONValue] = []
            try array { s throws(Malformed) in a.append(try s.value()) }
            return .array(a)
        case UInt8(ascii: "t")?, UInt8(ascii: "f")?:
            guard let b = try boolIfPresent() else { throw Malformed() }
            return .bool(b)
        case UInt8(ascii: "n")?:
            guard literal("null") else { throw Malformed() }
            return .null
        case nil: throw Malformed()
        default: return .number(try number())
        }
    }

    static func keyString(_ raw: UnsafeRawBufferPointer) throws(Malformed) -> String {
        raw.contains(UInt8(ascii: "\\")) ? try unescape(raw) : String(decoding: raw, as: UTF8.self)
    }

    /// True when the raw key is exactly `name` (keys ccdeck reads never contain escapes).
    static func key(_ raw: UnsafeRawBufferPointer, is name: StaticString) -> Bool {
        guard raw.count == name.utf8CodeUnitCount else { return false }
        for k in 0..<raw.count where raw[k] != name.utf8Start[k] { return false }
        return true
    }

    static func unescape(_ raw: UnsafeRawBufferPointer) throws(Malformed) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        func hex4(_ at: Int) throws(Malformed) -> UInt32 {
            guard at + 4 <= raw.count else { throw Malformed() }
            var v: UInt32 = 0
            for k in 0..<4 {
                let c = raw[at + k]
                let d: UInt8
                switch c {
                case 0x30...0x39: d = c - 0x30
                case 0x41...0x46: d = c - 0x41 + 10
                case 0x61...0x66: d = c - 0x61 + 10
                default: throw Malformed()
                }
                v = v << 4 | UInt32(d)
            }
            return v
        }
        while i < raw.count {
            let b = raw[i]
            guard b == UInt8(ascii: "\\") else { out.append(b); i += 1; continue }
            guard i + 1 < raw.count else { throw Malformed() }
            let e = raw[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(i)
                i += 4
                if (0xD800...0xDBFF).contains(scalar), i + 6 <= raw.count, raw[i] == UInt8(ascii: "\\"),
                   raw[i + 1] == UInt8(ascii: "u") {
                    let low = try hex4(i + 2)
                    if (0xDC00...0xDFFF).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    }
                }
                let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                out.append(contentsOf: String(u).utf8)
            default: throw Malformed()
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
