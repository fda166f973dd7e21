import CCDeckBackends
import Foundation
import Testing
import _CCDeckTestSupport

@Suite struct ProcessRunnerTests {
    let env = ProcessInfo.processInfo.environment

    @Test func capturesStdoutStderrAndStatus() throws {
        let out = try ProcessRunner.run(Command("sh", ["-c", "echo out; echo err >&2; exit 3"], environment: env))
        #expect(out.stdout == "out\n")
        #expect(out.stderr == "err\n")
        #expect(out.status == .exited(3))
        #expect(out.stderrSummary == "err")
    }

    @Test func environmentIsExactlyWhatWasGiven() throws {
        let out = try ProcessRunner.run(Command("sh", ["-c", "echo \"$ONLY\"; env | wc -l"],
                                                environment: ["PATH": "/usr/bin:/bin", "ONLY": "yes"]))
        let lines = out.stdout.split(separator: "\n")
        #expect(lines.first == "yes")
    }

    @Test func feedsStdin() throws {
        let out = try ProcessRunner.run(Command("cat", environment: env), input: Data("hello\n".utf8))
        #expect(out.stdout == "hello\n")
    }

    /// A child that prints more than a pipe holds before it reads a stdin larger than a pipe
    /// holds: the input goes as the pipe takes it while the output is read, so neither waits.
    @Test func aLargeStdinAndALargeOutputDoNotWaitOnEachOther() throws {
        let out = try ProcessRunner.run(Command("sh", ["-c", "head -c 1000000 /dev/zero | tr '\\0' x; wc -c"], environment: env),
                                        input: Data(repeating: UInt8(ascii: "y"), count: 2_000_000), timeout: 60)
        #expect(!out.timedOut)
        #expect(out.stdout.utf8.count == 1_000_008 && out.stdout.hasSuffix("x2000000\n"), "\(out.stdout.suffix(20))")
    }

    @Test func timeoutKillsTheWholeProcessGroup() throws {
        let start = Date()
        let out = try ProcessRunner.run(Command("sh", ["-c", "sleep 30 & sleep 30; echo never"], environment: env), timeout: 0.5)
        #expect(out.timedOut)
        #expect(out.status == .signaled(9))
        #expect(Date().timeIntervalSince(start) < 10)
    }

    @Test func missingProgramIsAClearError() {
        #expect(throws: ProcessError.notFound("no-such-program-ccdeck")) {
            try ProcessRunner.run(Command("no-such-program-ccdeck", environment: env))
        }
    }

    @Test func streamDeliversLinesIncludingAnUnterminatedLast() throws {
        let child = try ChildProcess.spawn(Command("sh", ["-c", "printf 'a\\nb\\n'; printf 'e1\\n' >&2; printf 'tail'"], environment: env))
        var out: [String] = [], err: [String] = []
        let status = ProcessRunner.stream(child, onStdoutLine: { out.append(String(decoding: $0, as: UTF8.self)) },
                                          onStderrLine: { err.append(String(decoding: $0, as: UTF8.self)) })
        #expect(status == .exited(0))
        #expect(out == ["a", "b", "tail"])
        #expect(err == ["e1"])
    }

    @Test func overlongLinesAreCappedNotBuffered() throws {
        let child = try ChildProcess.spawn(Command("sh", ["-c", "head -c 300000 /dev/zero | tr '\\\\0' x; echo; echo next"], environment: env))
        var lines: [Int] = []
        _ = ProcessRunner.stream(child, maxLineBytes: 1000, onStdoutLine: { lines.append($0.count) })
        #expect(lines == [1000, 4])
    }

    @Test func wakeDescriptorInterruptsTheWait() throws {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let child = try ChildProcess.spawn(Command("sleep", ["30"], environment: env))
        var woke = false
        var byte: UInt8 = 1
        _ = write(fds[1], &byte, 1)
        let status = ProcessRunner.stream(child, wakeFD: fds[0], onStdoutLine: { _ in }, onWake: {
            woke = true
            child.signal(SIGTERM)
        })
        #expect(woke)
        #expect(status == .signaled(SIGTERM))
    }
}

@Suite struct ArgvWatcherTests {
    /// The end-to-end leak checks rely on the watcher; prove it sees what it looks for.
    @Test func seesAValueInAnotherProcesssArgv() throws {
        let canary = "ccdeck-argv-canary-" + UUID().uuidString
        let watcher = ArgvWatcher(needle: canary)
        let child = try ChildProcess.spawn(Command("sh", ["-c", "sleep 0.3", canary], environment: ProcessInfo.processInfo.environment))
        child.wait()
        let (hits, scans) = watcher.stop()
        #expect(scans > 0)
        #expect(hits.contains { $0.contains(canary) })
    }
}
