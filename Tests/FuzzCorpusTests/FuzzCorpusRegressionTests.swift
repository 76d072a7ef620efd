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

    @Test("mmu-operations: the notifier-window inputs fault inside an open invalidation and see every window end")
    func mmuOperationWindows() throws {
        let inputs = try Self.inputs("mmu-operations").filter { $0.name.contains("-window-") }
        // Both backends, EPT with and without A/D flags.
        #expect(Set(inputs.map { $0.bytes[0] % 3 }) == [0, 1, 2])
        for input in inputs {
            let (problem, calls) = input.bytes.withUnsafeBytes { MMUOperationTarget.trace($0) }
            #expect(problem == nil, "corpus input \(input.name): \(problem ?? "")")
            let starts = calls.filter { $0.contains("notifier start of") && $0.contains("returned") }.count
            #expect(starts > 0, "corpus input \(input.name) opens no notifier window")
            #expect(calls.filter { $0.contains("notifier end delivered") }.count == starts,
                    "corpus input \(input.name): a window without its end")
            #expect(calls.contains { $0.contains("(retries: inside the open invalidation") },
                    "corpus input \(input.name): no fault inside an open invalidation")
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
