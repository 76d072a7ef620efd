import Foundation
import Testing

/// Every Swift code block in `README.md` and `Docs/*.md` is a complete
/// program that compiles (through the SIL mandatory passes) against the package as built for the tests
/// (`swiftc -emit-sil` with the test build's modules), so no sample
/// describes an API that does not exist.
@Suite("Documentation samples")
struct DocumentationSampleTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// (file, index, code) of every ```swift block.
    static func samples() throws -> [(file: String, index: Int, code: String)] {
        var files = ["README.md"]
        let docs = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("Docs").path)
        files += docs.filter { $0.hasSuffix(".md") }.sorted().map { "Docs/" + $0 }
        var result: [(String, Int, String)] = []
        for file in files {
            let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
            var inBlock = false
            var lines: [String] = []
            var index = 0
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                if !inBlock && line.hasPrefix("```swift") {
                    inBlock = true
                    lines = []
                } else if inBlock && line.hasPrefix("```") {
                    inBlock = false
                    index += 1
                    result.append((file, index, lines.joined(separator: "\n")))
                } else if inBlock {
                    lines.append(String(line))
                }
            }
        }
        return result
    }

    /// The directory holding the test build's modules: beside the test bundle.
    static var modulesDirectory: URL? {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while directory.path != "/" {
            let modules = directory.appendingPathComponent("Modules")
            if FileManager.default.fileExists(atPath: modules.appendingPathComponent("SLAT.swiftmodule").path) { return modules }
            directory.deleteLastPathComponent()
        }
        return nil
    }

    static var swiftc: String {
        let toolchain = ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":")
            .map { String($0) + "/swiftc" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        return toolchain ?? "/opt/swift/usr/bin/swiftc"
    }

    @Test("The README and Docs contain Swift samples")
    func samplesExist() throws {
        #expect(try Self.samples().count >= 8)
    }

    @Test("Every Swift sample in README.md and Docs/ compiles as a program (through SIL, so ownership errors count)")
    func everySampleTypeChecks() throws {
        guard let modules = Self.modulesDirectory else {
            Issue.record("no Modules directory beside \(CommandLine.arguments[0])")
            return
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("slat-doc-samples-\(getpid())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let build = modules.deletingLastPathComponent()
        var clangModules: [String] = []
        for target in ["CSLATArm64Hardware", "CSLATx86Hardware"] {
            let map = build.appendingPathComponent("\(target).build/module.modulemap").path
            if FileManager.default.fileExists(atPath: map) { clangModules += ["-Xcc", "-fmodule-map-file=\(map)"] }
        }
        for sample in try Self.samples() {
            let source = scratch.appendingPathComponent("main.swift")
            try sample.code.write(to: source, atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.swiftc)
            process.arguments = ["-emit-sil", "-o", "/dev/null", "-swift-version", "6", "-I", modules.path] + clangModules + [source.path]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let diagnostics = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(sample.file) sample \(sample.index) does not compile:\n\(diagnostics)")
        }
    }
}
