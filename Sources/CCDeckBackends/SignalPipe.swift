#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns SIGINT, SIGTERM and SIGHUP into a readable byte on a pipe, so the one loop that
/// waits on a run's output also learns of the signal; the handler itself only writes.
public enum SignalPipe {
    nonisolated(unsafe) private static var fds: [Int32] = [-1, -1]
    nonisolated(unsafe) private static var lastSignal: Int32 = 0

    /// The read end; install once per process.
    public static func install(_ signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]) -> Int32 {
        if fds[0] >= 0 { return fds[0] }
        _ = pipe(&fds)
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        for sig in signals {
            var action = sigaction()
            #if canImport(Glibc)
            action.__sigaction_handler.sa_handler = { sig in
                SignalPipe.lastSignal = sig
                var byte = UInt8(truncatingIfNeeded: sig)
                _ = write(SignalPipe.fds[1], &byte, 1)
            }
            #endif
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(sig, &action, nil)
        }
        return fds[0]
    }

    /// The most recent signal received (0 if none).
    public static var received: Int32 { lastSignal }
}
