import ArgumentParser
import CCDeckBackends
import CCDeckCore
import Foundation

/// Mode C's own chores: the runner image in Fly's registry, the token as the app's secret.
struct FlyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fly",
        abstract: "Fly.io: push the runner image and the token (see docs/fly.md).",
        subcommands: [Build.self, PushToken.self]
    )

    static func backend(_ app: String?) throws -> (FlyBackend, String) {
        let env = CLIContext.environment
        guard let fly = try CLIContext.registry.require(.fly, environment: env) as? FlyBackend else {
            throw CLIError.setup("this ccdeck has no Fly backend")
        }
        guard let name = fly.appName(app) else {
            throw CLIError.usage("no Fly app: give --app, set FLY_APP, or run where fly.toml names it")
        }
        return (fly, name)
    }

    struct Build: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "build",
            abstract: "Build the runner image and push it to registry.fly.io/APP:TAG; runs then use it.")

        @Option(help: "The Fly app (default: FLY_APP, else ./fly.toml's app).")
        var app: String?

        @Option(help: "The image's tag (default: the time, so every build is a new one).")
        var tag: String?

        @Option(help: "Build from this Dockerfile instead of the one built into ccdeck (its folder is the context).")
        var file: String?

        func run() throws {
            let (fly, name) = try FlyCommand.backend(app)
            let build = try ImageCommand.imageBuild(file: file)
            let label = tag ?? "ccdeck-" + RunRecord.newID(at: Date())
            Terminal.err("building and pushing registry.fly.io/\(name):\(label)…")
            do {
                let image = try fly.buildAndPush(app: name, tag: label, dockerfile: build.dockerfile, context: build.contextDirectory,
                                                 store: RunStore(environment: CLIContext.environment)) { Terminal.err("  " + $0) }
                Terminal.out("pushed \(image); fly runs of app \(name) use it now")
            } catch let error as BackendError {
                throw CLIError.setup("\(error)")
            }
        }
    }

    struct PushToken: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "push-token",
            abstract: "Store the token as the app's CLAUDE_CODE_OAUTH_TOKEN secret (staged, from stdin, never argv).")

        @Option(help: "The Fly app (default: FLY_APP, else ./fly.toml's app).")
        var app: String?

        func run() throws {
            var env = CLIContext.environment
            if let app { env["FLY_APP"] = app }
            let token = try TokenResolver(environment: env).resolve()
            guard let fly = try CLIContext.registry.require(.fly, environment: env) as? FlyBackend else {
                throw CLIError.setup("this ccdeck has no Fly backend")
            }
            do {
                let place = try fly.pushToken(token, store: RunStore(environment: env))
                Terminal.out("pushed \(token.redacted) to \(place)")
            } catch let error as BackendError {
                throw CLIError.setup("\(error)")
            }
        }
    }
}
