// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "ccdeck",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "ccdeck", targets: ["ccdeck"]),
        .executable(name: "ccdeck-netbridge", targets: ["ccdeck-netbridge"]),
        .executable(name: "ccdeck-dockerrun", targets: ["ccdeck-dockerrun"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Thin executable: one line calling the command line with ccdeck's own backends.
        // Its symbols stay its own (SwiftPM exports them all, for tests that import an executable;
        // none here does): 5,000 fewer for the loader to search, ~0.25 ms off every command.
        .executableTarget(name: "ccdeck", dependencies: ["CCDeckCLI"],
                          linkerSettings: [.unsafeFlags(["-Xlinker", "--no-export-dynamic"])]),
        // The commands: argument parsing and printing only; backends come from a registry.
        .target(
            name: "CCDeckCLI",
            dependencies: [
                "CCDeckCore",
                "CCDeckBackends",
                "CCDeckTUI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The sandbox side of the egress proxy (C, static: it runs inside any image and under bwrap).
        .executableTarget(name: "ccdeck-netbridge", linkerSettings: [.unsafeFlags(["-static-executable"])]),
        // `docker run -i` spoken straight to dockerd's socket (C, static: starts in well under a
        // millisecond, where the docker CLI takes 10-20 ms on every run's path).
        .executableTarget(name: "ccdeck-dockerrun", dependencies: ["CHelperIO"], linkerSettings: [.unsafeFlags(["-static-executable"])]),
        // `incus exec -T` spoken straight to incusd's socket (C, static), for the same reason.
        .executableTarget(name: "ccdeck-incusexec", dependencies: ["CHelperIO"], linkerSettings: [.unsafeFlags(["-static-executable"])]),
        // What those two share: HTTP/1.1 over a unix socket, a request body from stdin.
        .target(name: "CHelperIO"),
        .executableTarget(name: "ccdeck-bench", dependencies: ["CCDeckCore", "CCDeckBackends", "CCDeckTUI"]),
        // Domain and pure logic: no terminal, no processes.
        .target(name: "CCDeckCore"),
        // One file per backend behind one protocol, the process runner, the run store.
        .target(name: "CCDeckBackends", dependencies: ["CCDeckCore", "CSQLite"]),
        // The run index: Debian's libsqlite3 (WAL, shared by every ccdeck process on the store).
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // The dashboard: state and controller, panes drawing into an in-memory screen, the ncurses adapter.
        .target(name: "CCDeckTUI", dependencies: ["CCDeckCore", "CCDeckBackends", "CNCurses"]),
        .systemLibrary(name: "CNCurses", pkgConfig: "ncursesw", providers: [.apt(["libncurses-dev"])]),
        // Fixtures shared by the test targets (paths, engine environment, helpers).
        .target(name: "_CCDeckTestSupport", dependencies: ["CCDeckCore", "CCDeckBackends"]),

        .testTarget(name: "CCDeckCoreTests", dependencies: ["CCDeckCore", "_CCDeckTestSupport"]),
        .testTarget(name: "CCDeckBackendsTests", dependencies: ["CCDeckBackends", "_CCDeckTestSupport"]),
        .testTarget(name: "CCDeckTUITests", dependencies: ["CCDeckTUI", "_CCDeckTestSupport"]),
        // A backend that exists only in the tests, and the same command line with it registered:
        // the proof that a backend is one file and one registration line.
        .target(name: "CCDeckTestBackend", dependencies: ["CCDeckCore", "CCDeckBackends"], path: "Tests/TestBackend"),
        .executableTarget(name: "ccdeck-testhost", dependencies: ["CCDeckCLI", "CCDeckTestBackend"], path: "Tests/TestHost"),
        .testTarget(name: "EndToEndTests", dependencies: ["ccdeck", "ccdeck-testhost", "ccdeck-netbridge", "ccdeck-dockerrun", "ccdeck-incusexec",
                                                                "_CCDeckTestSupport"]),
    ]
)
