// swift-tools-version: 6.1
//
// The benchmark side of swift-epoll, kept out of the main package so that
// the libraries stay light and CI does not build SwiftNIO: peer servers for
// the same service (SwiftNIO, C) and package-benchmark suites.
import PackageDescription

let package = Package(
    name: "swift-epoll-benchmarks",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "nio-upper-echo",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "c-upper-echo",
            cSettings: [.unsafeFlags(["-O2"])]
        ),
    ],
    swiftLanguageModes: [.v6]
)
