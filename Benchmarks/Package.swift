// swift-tools-version: 6.1
//
// The benchmark side of swift-epoll, kept out of the main package so that
// the libraries stay light and CI does not build SwiftNIO: peer servers for
// the same service (SwiftNIO, SwiftNIO's NIOAsyncChannel, FlyingSocks, C,
// and the C loop in plain Swift) and
// package-benchmark suites.
import PackageDescription

let package = Package(
    name: "swift-epoll-benchmarks",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        // FileDescriptor, for the suites that hand descriptors to Reactor.
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        // FlyingSocks, the async socket layer under FlyingFox, for flyingsocks-upper-echo.
        .package(url: "https://github.com/swhitty/FlyingFox", exact: "0.27.1"),
    ],
    targets: [
        .executableTarget(
            name: "nio-upper-echo",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The same service through NIOAsyncChannel, one task per connection, as Hummingbird runs it.
        .executableTarget(
            name: "nio-async-upper-echo",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The same service on FlyingSocks' AsyncSocket, one task per connection.
        .executableTarget(
            name: "flyingsocks-upper-echo",
            dependencies: [.product(name: "FlyingSocks", package: "FlyingFox")]
        ),
        .executableTarget(
            name: "c-upper-echo",
            cSettings: [.unsafeFlags(["-O3"])]
        ),
        // The C peer's loop in Swift, without the library's layers (a diagnostic).
        .target(name: "CRawPeer"),
    ],
    swiftLanguageModes: [.v6]
)

// package-benchmark suites: `swift package benchmark` finds them by their
// sources under Benchmarks/<Suite>/<Suite>.swift. The targets are named
// <Suite>Benchmark so that no module shadows a type it measures
// (`Uppercase`, `OutboundBuffer`).
//
// `.package(path: "..")` is identified by the name of the parent directory
// (swift-epoll, or whatever a checkout or worktree is called).
let parentPackage = String(Context.packageDirectory.split(separator: "/").dropLast().last ?? "swift-epoll")

let suites: [(name: String, products: [String])] = [
    ("Uppercase", ["UpperEcho"]),
    ("EpollPoll", ["LinuxEpoll", "Selectors"]),
    ("OutboundBuffer", ["Reactor"]),
    ("EchoRoundTrip", ["LinuxEpoll", "Reactor", "Selectors", "UpperEcho"]),
]

package.targets.append(
    .executableTarget(
        name: "swift-raw-upper-echo",
        dependencies: ["CRawPeer", .product(name: "UpperEcho", package: parentPackage)]
    )
)

// What one suspended Swift task costs in resident memory (idle-rss.sh's floor
// for a task per connection).
package.targets.append(.executableTarget(name: "task-rss"))

// The reactor's instructions per event, run under callgrind by loop-instructions.sh.
package.targets.append(
    .executableTarget(
        name: "loop-instructions",
        dependencies: ["Reactor", "Selectors", "UpperEcho"].map { .product(name: $0, package: parentPackage) }
    )
)

// The configuration the per-operation suites share.
package.targets.append(
    .target(name: "BenchmarkSupport", dependencies: [.product(name: "Benchmark", package: "benchmark")])
)

package.targets += suites.map { suite in
    .executableTarget(
        name: "\(suite.name)Benchmark",
        dependencies: [.product(name: "Benchmark", package: "benchmark"), "BenchmarkSupport"]
            + suite.products.map { .product(name: $0, package: parentPackage) }
            + [.product(name: "SystemPackage", package: "swift-system")],
        path: "Benchmarks/\(suite.name)",
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
}
