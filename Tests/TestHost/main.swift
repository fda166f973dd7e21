import CCDeckBackends
import CCDeckCLI
import CCDeckTestBackend

// ccdeck's own command line with one more backend, registered here and nowhere else.
var registry = BackendRegistry.standard
registry.register(ProcBackend.kind) { ProcBackend(environment: $0) }
CCDeckCLI.main(registry: registry)
