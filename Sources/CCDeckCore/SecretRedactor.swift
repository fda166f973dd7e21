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
        guard !secret.isEmpty, data.count >= secret.count, data.range(of: Data(secret)) != nil else { return data }
        return Data(redact(Array(data)))
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
