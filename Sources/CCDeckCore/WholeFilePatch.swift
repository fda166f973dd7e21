/// The patch of files added or deleted whole, byte for byte as `git diff --no-color` prints it
/// (core.quotepath off, no attributes): what a run's comparison writes when a folder ccdeck made
/// only gained files (issue 15: two git processes fewer beside every such run's wind-down).
/// Paths that git would quote are not taken here: the caller asks git instead.
public enum WholeFilePatch {
    /// One file added (or deleted) whole: its path, git's mode, its bytes.
    public struct Entry: Sendable, Equatable {
        public enum Change: Sendable { case added, deleted }
        public var path: [UInt8]
        public var mode: String
        public var content: [UInt8]
        public var change: Change

        public init(path: [UInt8], mode: String, content: [UInt8], change: Change) {
            self.path = path
            self.mode = mode
            self.content = content
            self.change = change
        }

        /// git's reading: binary when a NUL is among the first 8,000 bytes.
        public var isBinary: Bool { content.prefix(8000).contains(0) }

        /// Lines as `--numstat` counts them: a last line without a newline counts.
        public var lineCount: Int {
            content.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) } + (content.last.map { $0 == 0x0A ? 0 : 1 } ?? 0)
        }

        /// The object id git gives these bytes (`git hash-object`).
        public var blobID: String { SHA1.hex(Array("blob \(content.count)\0".utf8) + content) }
    }

    /// Whether git prints this path as it is (core.quotepath off): no control byte, quote or
    /// backslash, and valid UTF-8.
    public static func printsPlain(_ path: [UInt8]) -> Bool {
        !path.isEmpty && !path.contains { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
            && String(validating: path, as: UTF8.self) != nil
    }

    /// The patch of `entries`, in the order given (git's: the paths' bytes).
    public static func patch(_ entries: [Entry]) -> [UInt8] {
        var out: [UInt8] = []
        for e in entries {
            let zero = "0000000", id = String(e.blobID.prefix(7))
            let added = e.change == .added
            out += Array("diff --git a/".utf8) + e.path + Array(" b/".utf8) + e.path + [0x0A]
            out += Array("\(added ? "new" : "deleted") file mode \(e.mode)\nindex \(added ? zero : id)..\(added ? id : zero)\n".utf8)
            if e.content.isEmpty { continue }
            if e.isBinary {
                out += Array((added ? "Binary files /dev/null and b/" : "Binary files a/").utf8) + e.path
                    + Array((added ? " differ\n" : " and /dev/null differ\n").utf8)
                continue
            }
            // git ends a file label holding a space with a tab.
            let tab: [UInt8] = e.path.contains(0x20) ? [0x09] : []
            let label = Array((added ? "b/" : "a/").utf8) + e.path + tab
            out += Array("--- ".utf8) + (added ? Array("/dev/null".utf8) : label) + [0x0A]
            out += Array("+++ ".utf8) + (added ? label : Array("/dev/null".utf8)) + [0x0A]
            let n = e.lineCount
            let range = n == 1 ? "1" : "1,\(n)"
            out += Array((added ? "@@ -0,0 +\(range) @@\n" : "@@ -\(range) +0,0 @@\n").utf8)
            let sign = added ? UInt8(ascii: "+") : UInt8(ascii: "-")
            var start = 0
            while start < e.content.count {
                let end = e.content[start...].firstIndex(of: 0x0A)
                out.append(sign)
                out += e.content[start..<(end ?? e.content.count)]
                out.append(0x0A)
                if end == nil { out += Array("\\ No newline at end of file\n".utf8) }
                start = (end ?? e.content.count) + 1
            }
        }
        return out
    }
}

/// SHA-1, for git's object ids only (never for anything secret).
public enum SHA1 {
    public static func hex(_ message: [UInt8]) -> String {
        digest(message).map { b in String(b >> 4, radix: 16) + String(b & 0xF, radix: 16) }.joined()
    }

    public static func digest(_ message: [UInt8]) -> [UInt8] {
        var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]
        var data = message
        let bitLength = UInt64(message.count) &* 8
        data.append(0x80)
        while data.count % 64 != 56 { data.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { data.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        var w = [UInt32](repeating: 0, count: 80)
        for chunk in stride(from: 0, to: data.count, by: 64) {
            for i in 0..<16 {
                let j = chunk + i * 4
                w[i] = UInt32(data[j]) << 24 | UInt32(data[j + 1]) << 16 | UInt32(data[j + 2]) << 8 | UInt32(data[j + 3])
            }
            for i in 16..<80 {
                let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
                w[i] = x << 1 | x >> 31
            }
            var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
            for i in 0..<80 {
                let (f, k): (UInt32, UInt32)
                switch i {
                case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
                case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
                case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                default: (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
                }
                let t = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[i]
                (e, d, c, b, a) = (d, c, b << 30 | b >> 2, a, t)
            }
            h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e
        }
        return h.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) } }
    }
}
