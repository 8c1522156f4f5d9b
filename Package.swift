// swift-tools-version: 6.0
//
// swift-epoll: epoll for Swift on Linux, from Python's `select.epoll` up to a
// production event loop. Layers depend downward only (see docs/ARCHITECTURE.md):
//
//   executables -> UpperEcho -> Reactor -> Selectors -> LinuxEpoll -> Syscalls -> CEpollShim
//
// LinuxEpoll, Selectors and Reactor depend on swift-system alone (UpperEcho
// adds swift-log and swift-metrics, upper-echo swift-prometheus); peers such
// as SwiftNIO live in the separate Benchmarks/ package so that CI stays fast.
import PackageDescription

let package = Package(
    name: "swift-epoll",
    products: [
        .library(name: "LinuxEpoll", targets: ["LinuxEpoll"]),
        .library(name: "Selectors", targets: ["Selectors"]),
        .library(name: "Reactor", targets: ["Reactor"]),
        .library(name: "UpperEcho", targets: ["UpperEcho"]),
        .library(name: "ReactorServiceLifecycle", targets: ["ReactorServiceLifecycle"]),
        .executable(name: "upper-echo", targets: ["upper-echo"]),
        .executable(name: "seed-server", targets: ["seed-server"]),
        .executable(name: "echo-load", targets: ["echo-load"]),
        .executable(name: "selector-bench", targets: ["selector-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // The metrics API in UpperEcho; the Prometheus backend in upper-echo only.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // A command plugin only (`swift package generate-documentation`):
        // nothing of it is linked into the products.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .target(name: "CEpollShim"),
        .target(
            name: "Syscalls",
            dependencies: ["CEpollShim", .product(name: "SystemPackage", package: "swift-system")]
        ),
        .target(
            name: "LinuxEpoll",
            dependencies: ["Syscalls", .product(name: "SystemPackage", package: "swift-system")]
        ),
        .target(
            name: "Selectors",
            dependencies: [
                "LinuxEpoll", "Syscalls", .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "Reactor",
            dependencies: [
                "Selectors", "LinuxEpoll", "Syscalls", .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // A LoopGroup as a swift-service-lifecycle Service, in a module of its
        // own so that Reactor itself depends on no lifecycle library.
        .target(
            name: "ReactorServiceLifecycle",
            dependencies: [
                "Reactor", "Selectors", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "UpperEcho",
            dependencies: [
                "Reactor", "Selectors", "Syscalls", .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .executableTarget(
            name: "upper-echo",
            dependencies: [
                "UpperEcho", "Reactor", "ReactorServiceLifecycle", "Selectors", "Syscalls",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "seed-server",
            dependencies: ["LinuxEpoll", "Syscalls", .product(name: "SystemPackage", package: "swift-system")]
        ),
        .executableTarget(
            name: "echo-load",
            dependencies: [
                "LinuxEpoll", "Syscalls", .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .executableTarget(
            name: "selector-bench",
            dependencies: [
                "Selectors", "LinuxEpoll", "Syscalls", .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .testTarget(
            name: "SelectorsTests",
            dependencies: [
                "Selectors", "LinuxEpoll", "Syscalls", "CEpollShim",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "TestSupport",
            dependencies: ["Reactor", "Selectors", "Syscalls", .product(name: "SystemPackage", package: "swift-system")],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "ReactorTests",
            dependencies: [
                "TestSupport",
                "Reactor", "Selectors", "LinuxEpoll", "Syscalls", "CEpollShim",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // UpperEchoServer in process, on a loop of the test's own.
        .testTarget(
            name: "UpperEchoTests",
            dependencies: [
                "TestSupport",
                "UpperEcho", "Reactor", "Selectors", "Syscalls", "CEpollShim",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The upper-echo executable in a child process: flags, signals, output.
        .testTarget(
            name: "UpperEchoCLITests",
            dependencies: [
                "TestSupport",
                "upper-echo", "UpperEcho", "Reactor", "Selectors", "Syscalls", "CEpollShim",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "ReliabilityTests",
            dependencies: [
                "TestSupport",
                "upper-echo", "echo-load", "Syscalls", "CEpollShim",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The async API again, with nonisolated async functions running on
        // their caller's executor (the upcoming default).
        .testTarget(
            name: "AsyncNonsendingTests",
            dependencies: ["TestSupport", "Reactor", "Selectors"],
            swiftSettings: [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
        ),
        .testTarget(
            name: "ReactorServiceLifecycleTests",
            dependencies: [
                "TestSupport", "Reactor", "ReactorServiceLifecycle", "Selectors",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "SyscallsTests",
            dependencies: ["Syscalls", "CEpollShim", .product(name: "SystemPackage", package: "swift-system")]
        ),
        .testTarget(
            name: "LinuxEpollTests",
            dependencies: [
                "LinuxEpoll", "Syscalls", "CEpollShim", .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .testTarget(
            name: "SeedServerTests",
            dependencies: [
                "TestSupport", "seed-server", "Syscalls", .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
