import Foundation

/// Replaces every occurrence of a secret with its redacted form. Applied to everything
/// ccdeck stores or prints that came from elsewhere (agent output, engine errors), because
/// an agent that runs `env` would otherwise write the token into its own output.
public struct SecretRedactor: Sendable {
    private let secret: [UInt8]
    private let replacement: [UInt8]

    public init(secret: String) {
        // Too short to be a token and too likely to match ordinary text.
        self.secret = secret.utf8.count >= 8 ? Array(secret.utf8) : []
        self.replacement = Array(Token.redact(secret).utf8)
    }

    public func redact(_ text: String) -> String {
        guard !secret.isEmpty, text.utf8.count >= secret.count else { return text }
        let bytes = Array(text.utf8)
        let out = redact(bytes)
        return out.count == bytes.count && out == bytes ? text : String(decoding: out, as: UTF8.self)
    }

    public func redact(_ data: Data) -> Data {
        guard !secret.isEmpty, data.count >= secret.count, contains(data) else { return data }
        return Data(redact(Array(data)))
    }

    /// The common case is a line without the secret, so the search must be cheap: `memchr` to
    /// each candidate first byte, then `memcmp`.
    private func contains(_ data: Data) -> Bool {
        data.withUnsafeBytes { hay in
            secret.withUnsafeBytes { needle in
                guard let base = hay.baseAddress, let n = needle.baseAddress else { return false }
                let first = Int32(needle[0])
                var offset = 0
                let last = hay.count - needle.count
                while offset <= last {
                    guard let hit = memchr(base + offset, first, last - offset + 1) else { return false }
                    let at = base.distance(to: UnsafeRawPointer(hit))
                    // The first byte of a token (`s`) is common in text; the second rarely follows it.
                    if hay[at + 1] == needle[1], memcmp(base + at, n, needle.count) == 0 { return true }
                    offset = at + 1
                }
                return false
            }
        }
    }

    private func redact(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        let first = secret[0]
        while i < bytes.count {
            if bytes[i] == first, i + secret.count <= bytes.count, bytes[i..<(i + secret.count)].elementsEqual(secret) {
                out.append(contentsOf: replacement)
                i += secret.count
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }
}
