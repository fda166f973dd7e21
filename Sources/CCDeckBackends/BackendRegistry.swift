import CCDeckCore
import Foundation

/// Every backend ccdeck knows, in display order, and concurrent probing of them all.
public enum BackendRegistry {
    public static func all(environment: [String: String]) -> [any SandboxBackend] {
        [ContainerBackend(kind: .docker, environment: environment),
         ContainerBackend(kind: .podman, environment: environment),
         DockerSandboxBackend(environment: environment),
         SbxBackend(environment: environment),
         FlyBackend(environment: environment),
         IncusBackend(environment: environment)]
    }

    public static func backend(_ kind: BackendKind, environment: [String: String]) -> any SandboxBackend {
        all(environment: environment).first { $0.kind == kind }!
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
