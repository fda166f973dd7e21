#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import CCDeckCore

/// Runs commands to completion (probes, engine queries) or streams their output line
/// by line (runs). One `poll` waits on every pipe: no threads, no busy loops.
public enum ProcessRunner {
    public struct Output: Sendable {
        public var status: ExitStatus
        public var stdout: String
        public var stderr: String
        /// The deadline passed and the process group was killed.
        public var timedOut: Bool

        /// The last non-empty stderr line (inert), for one-line error messages.
        public var stderrSummary: String {
            let line = stderr.lineSlices.last(where: { !$0.allSatisfy(\.isWhitespace) }).map(String.init)
                ?? stdout.lineSlices.last(where: { !$0.isEmpty }).map(String.init) ?? ""
            return InertText.line(line.trimmingCharacters(in: .whitespaces))
        }
    }

    /// Runs `command`, feeding `input` to its stdin, and collects its output.
    /// Past `timeout` the whole process group gets SIGKILL and `timedOut` is set.
    public static func run(_ command: Command, input: Data? = nil, timeout: TimeInterval? = nil) throws -> Output {
        let child = try ChildProcess.spawn(command, stdin: input == nil ? .null : .pipe)
        var out = Data(), err = Data()
        let pendingInput = input ?? Data()
        var inputSent = 0
        if input != nil && pendingInput.isEmpty { child.closeStdin() }
        // Written as the pipe takes it: a blocking write of more than the pipe holds would wait
        // for a child that is itself waiting for its output to be read.
        if child.stdinFD >= 0 { _ = fcntl(child.stdinFD, F_SETFL, fcntl(child.stdinFD, F_GETFL) | O_NONBLOCK) }
        let deadline = timeout.map { Date().addingTimeInterval($0) }
        var timedOut = false
        var open: [Int32: Bool] = [child.stdoutFD: true, child.stderrFD: true]
        while open.values.contains(true) || child.stdinFD >= 0 {
            var fds: [pollfd] = open.filter(\.value).map { pollfd(fd: $0.key, events: Int16(POLLIN), revents: 0) }
            if child.stdinFD >= 0 { fds.append(pollfd(fd: child.stdinFD, events: Int16(POLLOUT), revents: 0)) }
            var waitMS: Int32 = -1
            if let deadline {
                let left = deadline.timeIntervalSinceNow
                if !(left > 0) { timedOut = true; break }  // also a NaN deadline
                waitMS = Int32(min(left * 1000 + 1, 60_000))
            }
            let n = poll(&fds, nfds_t(fds.count), waitMS)
            if n < 0 { if errno == EINTR { continue } else { break } }
            for p in fds where p.revents != 0 {
                if p.fd == child.stdinFD {
                    let written = pendingInput.withUnsafeBytes { raw in
                        write(p.fd, raw.baseAddress! + inputSent, raw.count - inputSent)
                    }
                    if written > 0 { inputSent += written }
                    if (written < 0 && errno != EAGAIN && errno != EINTR) || inputSent == pendingInput.count { child.closeStdin() }
                    continue
                }
                let more = p.fd == child.stdoutFD ? readChunk(p.fd, into: &out) : readChunk(p.fd, into: &err)
                if !more { open[p.fd] = false }
            }
        }
        if timedOut {
            child.signal(SIGKILL)
        }
        let status = child.wait()
        return Output(status: status, stdout: String(decoding: out, as: UTF8.self),
                      stderr: String(decoding: err, as: UTF8.self), timedOut: timedOut)
    }

    /// Reads what is available; false at end of file or on error.
    private static func readChunk(_ fd: Int32, into data: inout Data) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n > 0 { data.append(contentsOf: buffer[..<n]); return true }
        if n < 0 && (errno == EINTR || errno == EAGAIN) { return true }
        return false
    }

    /// Writes what of `input` a started child's stdin pipe takes now, without waiting for the
    /// child to read; stdin stays open. Returns the rest, for `stream` to write and end.
    public static func writeWithoutWaiting(_ child: ChildProcess, _ input: Data) -> Data {
        guard child.stdinFD >= 0, !input.isEmpty else { return input }
        _ = fcntl(child.stdinFD, F_SETFL, fcntl(child.stdinFD, F_GETFL) | O_NONBLOCK)
        var written = 0
        while written < input.count {
            let n = input.withUnsafeBytes { raw in write(child.stdinFD, raw.baseAddress! + written, raw.count - written) }
            if n > 0 { written += n } else if n < 0 && errno == EINTR { continue } else { break }
        }
        return Data(input.dropFirst(written))
    }

    /// Streams a running child's stdout and stderr as lines until both close, then waits for it.
    ///
    /// - Parameters:
    ///   - input: written to the child's stdin (spawned with `stdin: .pipe`) as the pipe takes it,
    ///     then stdin is closed; the stream never blocks on a child that reads slowly or not at all.
    ///   - wakeFD: optional extra descriptor (a signal self-pipe); when readable, it is drained
    ///     and `onWake` runs, so a Ctrl-C can stop the run while the stream goes on.
    ///   - maxLineBytes: longer lines are delivered cut to this size (the caller keeps the raw bytes).
    public static func stream(_ child: ChildProcess, input: Data? = nil, wakeFD: Int32? = nil,
                              maxLineBytes: Int = 16 << 20,
                              onStdoutLine: (Data) -> Void,
                              onStderrLine: (Data) -> Void = { _ in },
                              onWake: () -> Void = {},
                              onBurstEnd: () -> Void = {},
                              timeout: () -> TimeInterval? = { nil },
                              onTimeout: () -> Void = {}) -> ExitStatus {
        var splitters: [Int32: LineSplitter] = [:]
        if child.stdoutFD >= 0 { splitters[child.stdoutFD] = LineSplitter(maxLineBytes: maxLineBytes) }
        if child.stderrFD >= 0 { splitters[child.stderrFD] = LineSplitter(maxLineBytes: maxLineBytes) }
        var pending = input ?? Data()
        var written = 0
        if child.stdinFD >= 0 {
            if pending.isEmpty { child.closeStdin() } else {
                _ = fcntl(child.stdinFD, F_SETFL, fcntl(child.stdinFD, F_GETFL) | O_NONBLOCK)
            }
        }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !splitters.isEmpty {
            var fds = splitters.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if child.stdinFD >= 0 { fds.append(pollfd(fd: child.stdinFD, events: Int16(POLLOUT), revents: 0)) }
            if let wakeFD { fds.append(pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)) }
            // No timer unless the caller has something to do at a time (a stop to retry).
            let wait = timeout().map { Int32(max(0, min($0, 60)) * 1000) } ?? -1
            let ready = poll(&fds, nfds_t(fds.count), wait)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if ready == 0 {
                onTimeout()
                continue
            }
            for p in fds where p.revents != 0 {
                if p.fd == wakeFD {
                    _ = buffer.withUnsafeMutableBytes { read(p.fd, $0.baseAddress, $0.count) }
                    onWake()
                    continue
                }
                if p.fd == child.stdinFD {
                    // A child that exits without reading gives EPIPE (SIGPIPE is ignored by ccdeck).
                    let n = pending.withUnsafeBytes { raw in
                        write(p.fd, raw.baseAddress! + written, min(raw.count - written, 65_536))
                    }
                    if n > 0 { written += n }
                    if (n < 0 && errno != EAGAIN && errno != EINTR) || written >= pending.count {
                        child.closeStdin()
                        pending = Data()
                    }
                    continue
                }
                let n = buffer.withUnsafeMutableBytes { read(p.fd, $0.baseAddress, $0.count) }
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                let isStdout = p.fd == child.stdoutFD
                func deliver(_ line: Data) { isStdout ? onStdoutLine(line) : onStderrLine(line) }
                if n <= 0 {
                    splitters[p.fd]?.finish(deliver)
                    splitters[p.fd] = nil
                    continue
                }
                buffer.withUnsafeBytes { raw in
                    let chunk = UnsafeRawBufferPointer(rebasing: raw[..<n])
                    splitters[p.fd]?.feed(chunk, deliver)
                }
            }
            onBurstEnd()
        }
        child.closeStdin()
        return child.wait()
    }
}

/// Splits a byte stream into lines without holding more than one (capped) line.
struct LineSplitter {
    let maxLineBytes: Int
    private var pending = Data()
    private var overflow = false

    init(maxLineBytes: Int) { self.maxLineBytes = maxLineBytes }

    mutating func feed(_ chunk: UnsafeRawBufferPointer, _ deliver: (Data) -> Void) {
        var start = 0
        while let nl = chunk[start...].firstIndex(of: UInt8(ascii: "\n")) {
            append(chunk[start..<nl])
            deliver(pending)
            pending.removeAll(keepingCapacity: true)
            overflow = false
            start = nl + 1
        }
        append(chunk[start...])
    }

    mutating func finish(_ deliver: (Data) -> Void) {
        if !pending.isEmpty { deliver(pending) }
        pending.removeAll()
    }

    private mutating func append(_ bytes: Slice<UnsafeRawBufferPointer>) {
        guard !overflow else { return }
        let room = maxLineBytes - pending.count
        if bytes.count <= room {
            pending.append(contentsOf: bytes)
        } else {
            pending.append(contentsOf: bytes.prefix(room))
            overflow = true
        }
    }
}
