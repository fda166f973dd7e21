import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Random access to the lines of a run's `output.jsonl` without loading it: an index of
/// line starts (8 bytes a line) grown as the file grows, and `pread` for each line asked for.
public final class RunOutputIndex {
    public let path: String
    private var fd: Int32 = -1
    /// Where each line starts, plus one entry past the last newline (where the next line will start).
    private var starts: [UInt64] = [0]
    private var indexedBytes: UInt64 = 0

    public init(path: String) {
        self.path = path
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Complete lines in the file now.
    public var count: Int {
        refresh()
        return starts.count - 1
    }

    public func line(at i: Int) -> Data? {
        line(at: i, maxBytes: .max)?.bytes
    }

    /// At most `maxBytes` (and a few more, to finish a character) of line `i`, and its whole
    /// length: a 60 MB line costs what its beginning costs.
    public func line(at i: Int, maxBytes: Int) -> (bytes: Data, length: Int)? {
        refresh()
        guard i >= 0, i < starts.count - 1, fd >= 0 else { return nil }
        let start = starts[i]
        let full = Int(starts[i + 1] - 1 - start)
        let length = min(full, maxBytes > Int.max - 4 ? Int.max : maxBytes + 4)
        guard length > 0 else { return (Data(), full) }
        var data = Data(count: length)
        let n = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, off_t(start)) }
        return n == length ? (data, full) : nil
    }

    /// Indexes whatever was appended since the last look.
    public func refresh() {
        if fd < 0 {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return }
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return }
        let size = UInt64(st.st_size)
        guard size > indexedBytes else { return }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var offset = indexedBytes
        while offset < size {
            let want = Int(min(UInt64(buffer.count), size - offset))
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(offset)) }
            guard n > 0 else { break }
            for j in 0..<n where buffer[j] == 0x0A {
                starts.append(offset + UInt64(j) + 1)
            }
            offset += UInt64(n)
        }
        indexedBytes = offset
    }
}
