// swift-tools-version: 6.2
import PackageDescription

// A VMM's MMU code written once for both architectures, as a separate
// package that depends on SLAT by path: it sees only SLAT's public API.
let package = Package(
    name: "TwoArchitectureVMM",
    dependencies: [.package(name: "SLAT", path: "../..")],
    targets: [
        .executableTarget(
            name: "TwoArchitectureVMM",
            dependencies: [.product(name: "SLAT", package: "SLAT")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
