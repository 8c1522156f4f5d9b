// swift-tools-version: 6.0
//
// libFuzzer targets for swift-epoll, kept out of the main package because
// they only link with `--sanitize fuzzer` (libFuzzer provides `main`).
// Run them with `scripts/fuzz.sh [SECONDS]` from the repository root.
import PackageDescription

// A path dependency is named after its folder, which differs between
// clones: derive it instead of spelling it.
let rootPackage = String(Context.packageDirectory.split(separator: "/").dropLast().last ?? "swift-epoll")

let package = Package(
    name: "swift-epoll-fuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .executableTarget(
            name: "FuzzSelector",
            dependencies: [
                .product(name: "Selectors", package: rootPackage),
                .product(name: "LinuxEpoll", package: rootPackage),
            ]
        ),
        .executableTarget(
            name: "FuzzOutboundBuffer",
            dependencies: [.product(name: "Reactor", package: rootPackage)]
        ),
        .executableTarget(
            name: "FuzzReadPath",
            dependencies: [
                .product(name: "Reactor", package: rootPackage),
                .product(name: "Selectors", package: rootPackage),
                .product(name: "UpperEcho", package: rootPackage),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
