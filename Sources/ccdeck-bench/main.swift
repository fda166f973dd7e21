// ccdeck-bench: benchmarks (not tests) of ccdeck's hot paths. See docs/benchmarks.md.
//
//     swift build -c release --product ccdeck-bench
//     .build/release/ccdeck-bench ingest [--lines N] [--fixture PATH] [--keep]
//     .build/release/ccdeck-bench egress [--requests N]     (EgressBench.swift)
//
// `ingest` pushes N stream-json lines (default 1,000,000) down the path a live run's output
// takes: `RunIngest.ingest` (redact, append to output.jsonl, parse, fold into the progress)
// and then `Dashboard.handle(.runEvent)` (the dashboard's copy of the progress and the
// pane's rendered tail). The lines cycle through the real recording
// Tests/Fixtures/stream-write_and_bash.jsonl (system init, assistant tool_use and text,
// rate_limit_event, user tool_result, result). It prints throughput, peak RSS and the size
// of the output file it wrote (in a temporary directory, removed unless --keep).
import CCDeckBackends
import CCDeckCore
import CCDeckTUI
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The pane's scrollback source; nothing scrolls here.
final class NoStoredOutput: OutputSource {
    func lineCount(run id: String) -> Int { 0 }
    func line(run id: String, at index: Int) -> String? { nil }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("ccdeck-bench: \(message)\n".utf8))
    exit(2)
}

func peakRSSMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024  // KiB on Linux
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return s(usage.ru_utime) + s(usage.ru_stime)
}

func monotonic() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func ingest(lines count: Int, fixture: String, keep: Bool) throws {
    guard let text = FileManager.default.contents(atPath: fixture) else { fail("cannot read \(fixture)") }
    let recording = text.split(separator: 0x0A).map { Data($0) }
    guard !recording.isEmpty else { fail("\(fixture) holds no lines") }

    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ccdeck-bench-\(getpid())").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { if !keep { try? FileManager.default.removeItem(atPath: dir) } }
    let outputPath = dir + "/output.jsonl"

    let token = "sk-ant-oat01-" + String(repeating: "x", count: 80)
    let run = try RunIngest(outputPath: outputPath, redactor: SecretRedactor(secret: token))
    var record = RunRecord(id: "20261129-000000-beef", mode: .docker, image: "ccdeck-runner:latest",
                           sandbox: "ccdeck-20261129-000000-beef", workspace: dir, workspaceIsTemporary: true,
                           prompt: "benchmark", keep: false, createdAt: Date(), driverPID: getpid(),
                           host: ProcessInfo.processInfo.hostName, tokenSource: "$CLAUDE_CODE_OAUTH_TOKEN")
    record.state = .running
    let dashboard = Dashboard(state: DashboardState(width: 120, height: 40, now: Date()), actions: ActionTable(),
                              output: NoStoredOutput())
    dashboard.handle(.runStarted(record))

    let rssBefore = peakRSSMiB()
    let cpuBefore = cpuSeconds()
    var ingestTime = 0.0, dashboardTime = 0.0
    let start = monotonic()
    for i in 0..<count {
        let t0 = monotonic()
        let (event, _) = run.ingest(recording[i % recording.count], at: Date())
        let t1 = monotonic()
        dashboard.handle(.runEvent(id: record.id, event))
        dashboardTime += monotonic() - t1
        ingestTime += t1 - t0
    }
    let elapsed = monotonic() - start
    let cpu = cpuSeconds() - cpuBefore

    let size = (try? FileManager.default.attributesOfItem(atPath: outputPath)[.size] as? Int) ?? 0
    let entry = dashboard.state.runs.first { $0.record.id == record.id }
    func f(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }
    print("lines:           \(count) (cycling the \(recording.count) lines of \((fixture as NSString).lastPathComponent))")
    print("wall:            \(f(elapsed, 3)) s  (RunIngest.ingest \(f(ingestTime, 3)) s, Dashboard.handle \(f(dashboardTime, 3)) s)")
    print("cpu:             \(f(cpu, 3)) s")
    print("throughput:      \(Int((Double(count) / elapsed).rounded())) lines/s  (target >= 200000)")
    print("peak RSS:        \(f(peakRSSMiB())) MiB  (\(f(rssBefore)) MiB before the loop; target < 64)")
    print("output.jsonl:    \(size) bytes (\(f(Double(size) / 1_048_576)) MiB)\(keep ? " in " + outputPath : "")")
    print("dashboard saw:   \(entry?.tail.totalAppended ?? 0) rendered lines, tail holds \(entry?.tail.count ?? 0), "
          + "\(entry?.progress.turns ?? 0) turns; ingest counted \(run.progress.turns) turns")
}

var args = Array(CommandLine.arguments.dropFirst())
let usage = "usage: ccdeck-bench ingest [--lines N] [--fixture PATH] [--keep] | egress [--requests N] | proxy SOCKET HOST..."
if args.first == "proxy" {
    // The egress proxy alone, for benchmarks that hold a sandbox to an allowlist without ccdeck.
    let proxyUsage = "usage: ccdeck-bench proxy SOCKET HOST..."
    guard args.count >= 3 else { fail(proxyUsage) }
    do {
        let proxy = try EgressProxy(policy: EgressPolicy(hosts: Array(args.dropFirst(2))), logPath: nil)
        try proxy.listen(unixPath: args[1])
        print("listening on \(args[1])")
        fflush(nil)
        while true { pause() }
    } catch { fail("\(error)") }
}
if args.first == "egress" {
    var requests = 2000
    if args.count == 3, args[1] == "--requests", let n = Int(args[2]), n > 0 { requests = n } else if args.count != 1 { fail(usage) }
    do { try egressBench(requests: requests) } catch { fail("\(error)") }
    exit(0)
}
guard args.first == "ingest" else { fail(usage) }
args.removeFirst()
var lines = 1_000_000
var fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Tests/Fixtures/stream-write_and_bash.jsonl").path
var keep = false
while !args.isEmpty {
    let arg = args.removeFirst()
    switch arg {
    case "--lines":
        guard let v = args.first.flatMap({ Int($0) }), v > 0 else { fail("--lines takes a positive number") }
        lines = v
        args.removeFirst()
    case "--fixture":
        guard let v = args.first else { fail("--fixture takes a path") }
        fixture = v
        args.removeFirst()
    case "--keep": keep = true
    default: fail(usage)
    }
}
do { try ingest(lines: lines, fixture: fixture, keep: keep) } catch { fail("\(error)") }
