// swift-tools-version: 6.2
import PackageDescription

// SLATCore, SLATx86 and SLATArm64 also build as Embedded Swift for bare-metal
// hypervisors (see .ci/run), so they use no Foundation, Dispatch or Glibc
// outside `#if canImport(Glibc)` blocks, typed throws only, and no existentials.
// Debug builds define SLAT_EXPLORATION_HOOKS; in hosted (non-Embedded)
// code the library then reports its lock, reclaimer, waiting and
// table-entry points (and SLATPfnCache its refresh points) to a
// controlled scheduler (SLATSim's ControlledScheduler) and lets tests switch
// known defects back on per thread (ExplorationMutation). Every hook sits
// under `#if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)`: release and
// Embedded builds have none (Docs/simulation.md, "Systematic exploration").
let explorationHooks: [SwiftSetting] = [
    .define("SLAT_EXPLORATION_HOOKS", .when(configuration: .debug)),
]

let package = Package(
    name: "SLAT",
    products: [
        .library(name: "SLAT", targets: ["SLAT"]),
        .library(name: "SLATCore", targets: ["SLATCore"]),
        .library(name: "SLATx86", targets: ["SLATx86"]),
        .library(name: "SLATArm64", targets: ["SLATArm64"]),
        .library(name: "SLATArm64Hardware", targets: ["SLATArm64Hardware"]),
        .library(name: "SLATx86Hardware", targets: ["SLATx86Hardware"]),
        .library(name: "SLATSplit", targets: ["SLATSplit"]),
        .library(name: "SLATSim", targets: ["SLATSim"]),
        .library(name: "SLATPfnCache", targets: ["SLATPfnCache"]),
        .library(name: "SLATImage", targets: ["SLATImage"]),
        .executable(name: "slat-bench", targets: ["slat-bench"]),
        .executable(name: "slat", targets: ["slat"]),
    ],
    targets: [
        .target(name: "SLATCore", swiftSettings: explorationHooks),
        .target(name: "SLATx86", dependencies: ["SLATCore"], swiftSettings: explorationHooks),
        .target(name: "SLATArm64", dependencies: ["SLATCore"], swiftSettings: explorationHooks),
        // The bare-metal AArch64 TLB and cache maintenance (EL2): Swift
        // sequences over one-instruction C inline functions, which exist
        // only when compiling for AArch64.
        .target(name: "CSLATArm64Hardware"),
        .target(name: "SLATArm64Hardware", dependencies: ["SLATCore", "SLATArm64", "CSLATArm64Hardware"]),
        // The bare-metal x86 TLB (VMX root operation): INVEPT as a C inline
        // function, which exists only when compiling for x86-64.
        .target(name: "CSLATx86Hardware"),
        .target(name: "SLATx86Hardware", dependencies: ["SLATCore", "SLATx86", "CSLATx86Hardware"]),
        .target(name: "SLATSplit", dependencies: ["SLATCore", "SLATx86", "SLATArm64"]),
        // Hosted only (threads, Foundation): simulated hardware, the pfn
        // cache, table images and the tools.
        .target(name: "SLATSim", dependencies: ["SLATCore"], swiftSettings: explorationHooks),
        .target(name: "SLATPfnCache", dependencies: ["SLATCore"], swiftSettings: explorationHooks),
        .target(name: "SLAT", dependencies: ["SLATCore", "SLATx86", "SLATArm64", "SLATSplit", "SLATPfnCache", "SLATSim"]),
        .target(name: "SLATImage", dependencies: ["SLATCore", "SLATx86", "SLATArm64"]),
        .executableTarget(name: "slat", dependencies: ["SLATImage"]),
        .executableTarget(
            name: "slat-bench",
            dependencies: ["SLAT", "SLATx86", "SLATArm64", "SLATSplit", "SLATSim", "SLATPfnCache"],
            path: "Benchmarks/slat-bench"
        ),
        .testTarget(name: "SLATCoreTests", dependencies: ["SLAT", "SLATCore", "SLATx86", "SLATArm64"]),
        .testTarget(name: "SLATx86Tests", dependencies: ["SLATCore", "SLATx86", "SLATx86Hardware", "SLATSim"]),
        .testTarget(name: "SLATArm64Tests", dependencies: ["SLATCore", "SLATArm64", "SLATArm64Hardware", "SLATSim"]),
        .testTarget(name: "SLATSplitTests", dependencies: ["SLATCore", "SLATSplit", "SLATx86", "SLATArm64", "SLATSim"]),
        .testTarget(name: "SLATSimTests", dependencies: ["SLATCore", "SLATSim", "SLATx86", "SLATArm64", "SLATPfnCache",
                                                   "SLATSplit"],
                    swiftSettings: explorationHooks),
        .testTarget(name: "SLATPfnCacheTests", dependencies: ["SLATCore", "SLATPfnCache"]),
        .testTarget(name: "SLATImageTests", dependencies: ["SLATCore", "SLATImage", "SLATx86", "SLATArm64"]),
        // The libFuzzer targets' bodies (Tests/Fuzz/run links them with their
        // -sanitize=fuzzer entries); the tests replay every committed corpus input.
        .target(name: "SLATFuzzTargets", dependencies: ["SLATCore", "SLATSim", "SLATx86", "SLATArm64", "SLATImage"],
                path: "Tests/Fuzz/Targets"),
        .testTarget(name: "FuzzCorpusTests", dependencies: ["SLATFuzzTargets"], path: "Tests/FuzzCorpusTests"),
    ],
    swiftLanguageModes: [.v6]
)
