#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Turns signals into a readable byte on a pipe (the byte is the signal number), so the one
/// loop that waits on a run's output or the keyboard also learns of them; the handler itself
/// only writes.
public enum SignalPipe {
    nonisolated(unsafe) private static var readFD: Int32 = -1
    nonisolated(unsafe) private static var writeFD: Int32 = -1
    nonisolated(unsafe) private static var lastSignal: Int32 = 0

    /// The read end. Installing again adds signals to the same pipe.
    public static func install(_ signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]) -> Int32 {
        if readFD < 0, let fds = Pipe2.make(nonBlocking: true) {
            (readFD, writeFD) = fds
        }
        signals.forEach(reinstall)
        return readFD
    }

    /// Points one signal at the pipe (again, after something reset it to the default).
    public static func reinstall(_ sig: Int32) {
        var action = sigaction()
        #if canImport(Glibc)
        action.__sigaction_handler.sa_handler = { sig in
            // The interrupted code may be about to read errno: give it back untouched.
            let saved = errno
            SignalPipe.lastSignal = sig
            var byte = UInt8(truncatingIfNeeded: sig)
            _ = write(SignalPipe.writeFD, &byte, 1)
            errno = saved
        }
        #endif
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        sigaction(sig, &action, nil)
    }

    /// The most recent signal received (0 if none).
    public static var received: Int32 { lastSignal }
}
