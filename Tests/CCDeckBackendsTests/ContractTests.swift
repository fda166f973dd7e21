@testable import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport

/// What ccdeck hands the engines, pinned against backends.md's contract.
@Suite struct ContractTests {
    let secret = "sk-ant-oat01-" + "CANARY-CONTRACT-0123456789" + "abcdefghijklmnopqrstuvwxyz"

    func spec(kind: BackendKind) -> (ContainerBackend, RunSpec) {
        let store = RunStore(root: "/tmp/ccdeck-contract")
        let token = Token(value: secret, kind: .setupToken, source: .environment(variable: "CLAUDE_CODE_OAUTH_TOKEN"))
        let backend = ContainerBackend(kind: kind, environment: [:])
        let driver = RunDriver(backend: backend, store: store, token: token,
                               environment: ["PATH": "/usr/bin", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
                                             "ANTHROPIC_API_KEY": "sk-ant-api03-host-key", "EXTRA": "1"]) { _ in }
        var record = RunRecord(id: "r1", mode: kind, image: "img", container: "ccdeck-r1", workspace: "/ws",
                               workspaceIsTemporary: true, prompt: "do it", keep: false, createdAt: Date(), driverPID: 1,
                               host: "h", tokenSource: nil)
        record.state = .running
        let request = RunRequest(prompt: "do it", runtimeArguments: ["--network=host"], passEnvironment: ["EXTRA"])
        return (backend, driver.makeSpec(record: record, request: request))
    }

    @Test(arguments: [BackendKind.docker, .podman])
    func tokenTravelsByNameOnly(kind: BackendKind) {
        let (backend, spec) = spec(kind: kind)
        let args = backend.runArguments(spec)
        #expect(!args.joined(separator: " ").contains("CANARY"))
        #expect(args.contains("CLAUDE_CODE_OAUTH_TOKEN"))
        #expect(!args.contains { $0.hasPrefix("CLAUDE_CODE_OAUTH_TOKEN=") })
        #expect(spec.environment["CLAUDE_CODE_OAUTH_TOKEN"] == secret)
        // The host's API key must not ride along and win over the OAuth token inside.
        #expect(spec.environment["ANTHROPIC_API_KEY"] == nil)
        #expect(!spec.passEnvironment.contains("ANTHROPIC_API_KEY"))
    }

    @Test func runArgumentsHaveLabelsMountAndStreamJSON() throws {
        let (backend, spec) = spec(kind: .docker)
        let args = backend.runArguments(spec)
        #expect(Array(args.prefix(3)) == ["run", "--name", "ccdeck-r1"])
        #expect(args.contains("ccdeck.run=r1"))
        #expect(args.contains("ccdeck.mode=docker"))
        #expect(args.contains { $0.hasPrefix("ccdeck.store=") })
        #expect(args.contains("/ws:/workspace"))
        #expect(spec.passEnvironment == ["CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL", "EXTRA"])
        let imageIndex = try #require(args.firstIndex(of: RunnerImage.defaultTag))
        #expect(args[imageIndex - 1] == "--network=host")
        #expect(Array(args[(imageIndex + 1)...]) == ["do it", "--output-format", "stream-json", "--verbose"])
        #expect(!args.contains("--rm"))  // the container outlives a crashed ccdeck and is found again by label
    }

    @Test func apiKeysGoInAsAnthropicAPIKey() {
        let token = Token(value: "sk-ant-api03-abcdefghijklmnop", kind: .apiKey, source: .environment(variable: "X"))
        let driver = RunDriver(backend: ContainerBackend(kind: .docker, environment: [:]), store: RunStore(root: "/tmp/x"),
                               token: token, environment: ["CLAUDE_CODE_OAUTH_TOKEN": "stale"]) { _ in }
        let record = RunRecord(id: "r", mode: .docker, image: "i", container: "c", workspace: "/w", workspaceIsTemporary: true,
                               prompt: "p", keep: false, createdAt: Date(), driverPID: 1, host: "h", tokenSource: nil)
        let spec = driver.makeSpec(record: record, request: RunRequest())
        #expect(spec.passEnvironment.first == "ANTHROPIC_API_KEY")
        #expect(spec.environment["CLAUDE_CODE_OAUTH_TOKEN"] == nil)
    }

    @Test func repositoryDockerfileIsTheOneCompiledIn() throws {
        let text = try String(contentsOfFile: TestPaths.repositoryRoot + "/Dockerfile", encoding: .utf8)
        #expect(text == RunnerImage.dockerfile)
        let instructions = text.lineSlices.filter { !$0.hasPrefix("#") && !$0.isEmpty }
        #expect(instructions.first == "FROM node:22-slim")
        #expect(instructions.contains("USER agent"))
        #expect(text.contains(#"{"hasCompletedOnboarding": true}"#) && text.contains("/home/agent/.claude.json"))
        #expect(instructions.last == #"ENTRYPOINT ["claude", "-p", "--dangerously-skip-permissions"]"#)
        #expect(text.contains("npm install -g @anthropic-ai/claude-code"))
        // The last USER before the entrypoint is the non-root agent.
        #expect(instructions.last { $0.hasPrefix("USER ") } == "USER agent")
    }
}
