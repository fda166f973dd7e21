import Foundation

/// `docker run -i …` without the docker CLI: the same arguments turned into the Engine API's
/// create request, which `ccdeck-dockerrun` (a small static C client beside ccdeck) sends to
/// dockerd's socket, then attaches, starts, pumps and waits as the CLI would.
///
/// The CLI is a Go program that takes 10–20 ms of wall time and ~15 ms of CPU to start and
/// negotiate before its first request, on every run's path (docs/benchmarks.md). Only the
/// arguments ccdeck itself writes are understood, plus a run's own `--network`; any other
/// runtime argument keeps the run on the CLI, which knows them all.
public enum DockerDirectRun {
    /// The client beside ccdeck (`CCDECK_DOCKERRUN` names another; `off` keeps the CLI).
    public static func findClient(environment: [String: String]) -> String? {
        if environment["CCDECK_DOCKERRUN"] == "off" { return nil }
        return BundledHelper.find("ccdeck-dockerrun", variable: "CCDECK_DOCKERRUN", environment: environment)
    }

    /// The container's name and the create request's JSON body for `docker` + `arguments`, with
    /// `-e NAME` taking its value from `environment` as the CLI does (the token's value ends up
    /// in the body: it goes to the client on its stdin, never in argv). Nil when an argument is
    /// one this does not translate.
    public static func createRequest(_ arguments: [String], environment: [String: String]) -> (name: String, body: Data)? {
        guard arguments.first == "run" else { return nil }
        var name: String?
        var interactive = false
        var env: [String] = [], labels: [String: String] = [:], binds: [String] = [], mounts: [String] = []
        var host: [(String, String)] = []
        var config: [(String, String)] = []
        var i = 1
        func value() -> String? {
            i += 1
            return i < arguments.count ? arguments[i] : nil
        }
        while i < arguments.count, arguments[i].hasPrefix("-") {
            let arg = arguments[i]
            var flag = arg, inline: String?
            if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
                flag = String(arg[..<eq])
                inline = String(arg[arg.index(after: eq)...])
            }
            switch flag {
            case "-i": interactive = true
            case "--pull" where inline == "never": break  // the API never pulls
            case "--name": name = inline ?? value()
            case "--runtime": guard let v = inline ?? value() else { return nil }; host.append(("Runtime", quote(v)))
            case "--network", "--net": guard let v = inline ?? value() else { return nil }; host.append(("NetworkMode", quote(v)))
            case "-w", "--workdir": guard let v = inline ?? value() else { return nil }; config.append(("WorkingDir", quote(v)))
            case "--user", "-u": guard let v = inline ?? value() else { return nil }; config.append(("User", quote(v)))
            case "--entrypoint": guard let v = inline ?? value() else { return nil }; config.append(("Entrypoint", "[" + quote(v) + "]"))
            case "--label", "-l":
                guard let v = inline ?? value() else { return nil }
                let parts = v.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                labels[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            case "-e", "--env":
                guard let v = inline ?? value() else { return nil }
                if v.contains("=") { env.append(v) } else if let set = environment[v] { env.append(v + "=" + set) }
            case "-v", "--volume": guard let v = inline ?? value() else { return nil }; binds.append(v)
            case "--mount":
                guard let v = inline ?? value(), let mount = bindMount(v) else { return nil }
                mounts.append(mount)
            default: return nil
            }
            i += 1
        }
        guard interactive, let name, i < arguments.count else { return nil }
        let image = arguments[i]
        let command = arguments[(i + 1)...]
        var hostFields = host.map { "\(quote($0.0)):\($0.1)" }
        if !binds.isEmpty { hostFields.append("\"Binds\":" + list(binds)) }
        if !mounts.isEmpty { hostFields.append("\"Mounts\":[" + mounts.joined(separator: ",") + "]") }
        var fields = ["\"Image\":" + quote(image), "\"Cmd\":" + list(Array(command)),
                      "\"AttachStdin\":true", "\"AttachStdout\":true", "\"AttachStderr\":true",
                      "\"OpenStdin\":true", "\"StdinOnce\":true", "\"Tty\":false"]
        fields += config.map { "\(quote($0.0)):\($0.1)" }
        if !env.isEmpty { fields.append("\"Env\":" + list(env)) }
        if !labels.isEmpty {
            fields.append("\"Labels\":{" + labels.sorted(by: { $0.key < $1.key }).map { quote($0.key) + ":" + quote($0.value) }
                .joined(separator: ",") + "}")
        }
        fields.append("\"HostConfig\":{" + hostFields.joined(separator: ",") + "}")
        return (name, Data(("{" + fields.joined(separator: ",") + "}").utf8))
    }

    /// What the client reads first on its stdin: the body's length, a newline, the body.
    public static func stdinPrefix(body: Data) -> Data {
        Data("\(body.count)\n".utf8) + body
    }

    /// `--mount type=bind,source=S,target=T[,readonly]` (the only kind ccdeck writes; prepare
    /// refuses a path holding both ',' and ':', so ',' splits it).
    static func bindMount(_ text: String) -> String? {
        var source: String?, target: String?, readOnly = false, bind = false
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            switch (kv[0], kv.count > 1 ? kv[1] : nil) {
            case ("type", "bind"?): bind = true
            case ("source", let v?), ("src", let v?): source = v
            case ("target", let v?), ("dst", let v?), ("destination", let v?): target = v
            case ("readonly", nil), ("ro", nil), ("readonly", "true"?), ("ro", "true"?): readOnly = true
            default: return nil
            }
        }
        guard bind, let source, let target else { return nil }
        return "{\"Type\":\"bind\",\"Source\":\(quote(source)),\"Target\":\(quote(target)),\"ReadOnly\":\(readOnly)}"
    }

    static func list(_ items: [String]) -> String { "[" + items.map(quote).joined(separator: ",") + "]" }

    /// A JSON string: quotes, backslashes and control characters escaped; the rest as UTF-8.
    public static func quote(_ s: String) -> String {
        var out = [UInt8]()
        out.reserveCapacity(s.utf8.count + 2)
        out.append(UInt8(ascii: "\""))
        let hex = Array("0123456789abcdef".utf8)
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), b]
            case 0..<0x20: out += Array("\\u00".utf8) + [hex[Int(b >> 4)], hex[Int(b & 0xF)]]
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
        return String(decoding: out, as: UTF8.self)
    }
}
