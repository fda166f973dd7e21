import ArgumentParser
import CCDeckBackends
import CCDeckCore
import Foundation

struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Build the runner image.",
        subcommands: [Build.self]
    )

    struct Build: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "build",
            abstract: "Build the runner image (node:22-slim + Claude Code, user agent) from ccdeck's Dockerfile."
        )

        @Option(help: ArgumentHelp("The backend that builds it: docker, podman, or incus (built with docker or podman, imported as an image alias).", valueName: "runtime"))
        var runtime = "docker"

        @Option(help: "Image name and tag.")
        var tag = RunnerImage.defaultTag

        @Option(help: "Build from this Dockerfile instead of the one built into ccdeck (its folder is the context).")
        var file: String?

        func run() throws {
            let env = ProcessInfo.processInfo.environment
            let found = try CLIContext.registry.require(BackendKind(runtime), environment: env)
            guard let backend = found as? any ImageBuilder else {
                let builders = CLIContext.registry.all(environment: env).filter { $0 is any ImageBuilder }.map(\.kind.rawValue)
                throw CLIError.usage("\(found.kind.displayName) does not build images (use one of: \(builders.joined(separator: ", ")))")
            }
            let build = try ImageCommand.imageBuild(file: file)
            let status = backend.probe(timeout: 3)
            guard status.state == .ready else {
                throw CLIError.setup("\(backend.kind.displayName) is not available: \(status.detail)")
            }
            Terminal.err("building \(InertText.line(tag)) with \(backend.kind.displayName)…")
            do {
                try backend.build(image: tag, build) { Terminal.err("  " + $0) }
            } catch let error as BackendError {
                throw CLIError.setup("\(error)")
            } catch ProcessError.notFound(let name) {
                throw CLIError.setup("\(name) is not installed")
            }
            Terminal.out("built \(InertText.line(tag))")
        }
    }

    static func imageBuild(file: String?) throws -> ImageBuild {
        guard let file else { return ImageBuild(dockerfile: RunnerImage.dockerfile) }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CLIError.usage("cannot read Dockerfile \(InertText.line(file))")
        }
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        return ImageBuild(dockerfile: String(decoding: data, as: UTF8.self), contextDirectory: dir)
    }
}
