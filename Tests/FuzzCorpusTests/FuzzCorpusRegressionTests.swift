import Foundation
import SLATFuzzTargets
import Testing

/// Every committed fuzz corpus input (Tests/Fuzz/corpus/<target>) replayed
/// through its target in the ordinary test run: a crash input added to a
/// corpus directory is a regression test from then on (Docs/simulation.md,
/// "Fuzzing").
@Suite("Fuzz corpus: every committed input replays without a problem")
struct FuzzCorpusRegressionTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus")

    /// The inputs of `target`'s corpus, by file name.
    static func inputs(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        let directory = corpus.appendingPathComponent(target)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        return try names.map { name in
            (name, Array(try Data(contentsOf: directory.appendingPathComponent(name))))
        }
    }

    @Test("table-operations: each input's operations match the reference model and the TLB detectors")
    func tableOperations() throws {
        let inputs = try Self.inputs("table-operations")
        #expect(!inputs.isEmpty)
        for input in inputs {
            let problem = input.bytes.withUnsafeBytes { TableOperationTarget.run($0) }
            #expect(problem == nil, "corpus input \(input.name): \(problem ?? "")")
        }
    }

    @Test("mmu-operations: each input's calls on an EPT or stage-2 MMU match the reference model")
    func mmuOperations() throws {
        let inputs = try Self.inputs("mmu-operations")
        #expect(!inputs.isEmpty)
        for input in inputs {
            let problem = input.bytes.withUnsafeBytes { MMUOperationTarget.run($0) }
            #expect(problem == nil, "corpus input \(input.name): \(problem ?? "")")
        }
    }

    @Test("script-parser: each input parses or is refused with a typed error")
    func scriptParser() throws {
        let inputs = try Self.inputs("script-parser")
        #expect(!inputs.isEmpty)
        for input in inputs { input.bytes.withUnsafeBytes { ScriptParserTarget.run($0) } }
    }

    @Test("image-loader: each input is read and rendered or refused with a typed error")
    func imageLoader() throws {
        let inputs = try Self.inputs("image-loader")
        #expect(!inputs.isEmpty)
        for input in inputs { input.bytes.withUnsafeBytes { ImageLoaderTarget.run($0) } }
    }
}
