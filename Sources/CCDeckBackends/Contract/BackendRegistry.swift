import CCDeckCore
import Foundation

/// Every backend ccdeck can use, in display order. The CLI and the dashboard find backends here
/// and nowhere else: adding one is its file under `Backends/` and one `register` line below
/// (or, for a backend that lives elsewhere, such as the tests' own, a `register` call there).
public struct BackendRegistry: Sendable {
    public typealias Factory = @Sendable (_ environment: [String: String]) -> any SandboxBackend

    private var factories: [(kind: BackendKind, make: Factory)] = []

    public init() {}

    /// ccdeck's own backends.
    public static let standard: BackendRegistry = {
        var r = BackendRegistry()
        r.register(.docker) { ContainerBackend(.docker, environment: $0) }
        r.register(.podman) { ContainerBackend(.podman, environment: $0) }
        r.register(.sandbox) { DockerSandboxBackend(environment: $0) }
        r.register(.fly) { FlyBackend(environment: $0) }
        r.register(.incus) { IncusBackend(environment: $0) }
        r.register(.local) { LocalBackend(environment: $0) }
        return r
    }()

    /// Adds a backend (or replaces the one registered under the same name).
    public mutating func register(_ kind: BackendKind, _ make: @escaping Factory) {
        factories.removeAll { $0.kind == kind }
        factories.append((kind, make))
    }

    public var kinds: [BackendKind] { factories.map(\.kind) }

    public func all(environment: [String: String]) -> [any SandboxBackend] {
        factories.map { $0.make(environment) }
    }

    /// The backend registered as `kind`, or nil for a mode this ccdeck does not know.
    public func backend(_ kind: BackendKind, environment: [String: String]) -> (any SandboxBackend)? {
        factories.first { $0.kind == kind }.map { $0.make(environment) }
    }

    /// The backend registered as `kind`, or an error naming the modes that are known.
    public func require(_ kind: BackendKind, environment: [String: String]) throws -> any SandboxBackend {
        guard let b = backend(kind, environment: environment) else { throw BackendError.unknownMode(kind, known: kinds) }
        return b
    }

    /// Traits of every backend, by kind (backends are cheap to make: no process is started).
    public func traits(environment: [String: String] = [:]) -> [BackendKind: BackendTraits] {
        Dictionary(uniqueKeysWithValues: all(environment: environment).map { ($0.kind, $0.traits) })
    }

    /// Backends that can run agents, in display order.
    public func runnable(environment: [String: String]) -> [any SandboxBackend] {
        all(environment: environment).filter(\.traits.canRun)
    }

    /// Probes every backend at once, one thread each, so the slowest bounds the wait.
    public static func probeAll(_ backends: [any SandboxBackend], timeout: TimeInterval) -> [BackendStatus] {
        let results = ResultBox(count: backends.count)
        let group = DispatchGroup()
        for (i, backend) in backends.enumerated() {
            group.enter()
            let thread = Thread {
                results.set(i, backend.probe(timeout: timeout))
                group.leave()
            }
            thread.start()
        }
        group.wait()
        return results.values.enumerated().map { i, status in
            status ?? BackendStatus(kind: backends[i].kind, state: .error, detail: "probe did not finish")
        }
    }

    private final class ResultBox: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var values: [BackendStatus?]
        init(count: Int) { values = Array(repeating: nil, count: count) }
        func set(_ i: Int, _ v: BackendStatus) { lock.lock(); values[i] = v; lock.unlock() }
    }
}
