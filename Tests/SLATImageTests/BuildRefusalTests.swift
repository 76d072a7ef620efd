import Foundation
import Testing

/// `slat build` refuses what it cannot build faithfully with exit status 2,
/// a message naming the problem, nothing on stdout and no output directory.
@Suite("slat build refusals")
struct BuildRefusalTests {
    static let mapping = "0x80000000 2M 0x80000000 rw wb\n"

    /// Builds `script` with `options` into a fresh directory.
    func build(_ options: [String], script: String = mapping, timeLimit: Double = 60) throws -> (run: SlatRun, map: String, out: String) {
        let directory = try makeTemporaryDirectory()
        let map = try writeFile("g.map", script, in: directory)
        let out = directory.appendingPathComponent("out").path
        let run = try runSlat(["build"] + options + ["--map", map, "--out", out], timeLimit: timeLimit)
        return (run, map, out)
    }

    /// Checks the common shape of a refusal and returns stderr.
    func expectRefused(_ result: (run: SlatRun, map: String, out: String), sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!result.run.signalled && !result.run.timedOut, "ended by signal \(result.run.status)", sourceLocation: sourceLocation)
        #expect(result.run.status == 2, "\(result.run.error)", sourceLocation: sourceLocation)
        #expect(result.run.output.isEmpty, sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: result.out), sourceLocation: sourceLocation)
    }

    @Test("A base whose root tables would reach past the PA size is refused, not followed into a crash", arguments: [
        ["--format", "s2-4k", "--base", "0x1000000000000"],
        ["--format", "s2-4k", "--base", "0xfffffffff000"],
    ])
    func baseAtTopOfPhysicalSpace(options: [String]) throws {
        let result = try build(options)
        expectRefused(result)
        #expect(result.run.error.contains("the root tables (8K) would reach past the 48-bit PA size"), "\(result.run.error)")
    }

    @Test("A base with room for the root but not the next table is refused as out of table memory", arguments: [
        ["--format", "s2-64k", "--base", "0xffffffff0000"],
        ["--format", "s2-64k", "--ipa-bits", "52", "--pa-bits", "52", "--base", "0xfffffffff0000"],
        ["--format", "s2-4k", "--pa-bits", "40", "--base", "0xffffffe000"],
        ["--format", "ept4", "--pa-bits", "40", "--base", "0xfffffff000"],
    ])
    func tablesPastThePASize(options: [String]) throws {
        let result = try build(options)
        expectRefused(result)
        #expect(result.run.error.contains("out of table memory"), "\(result.run.error)")
        #expect(result.run.error.contains("-bit PA size"), "\(result.run.error)")
    }

    @Test("Out of table memory is reported as FILE:LINE")
    func outOfTableMemoryNamesTheFile() throws {
        let result = try build(["--format", "ept4", "--pa-bits", "40", "--base", "0xffffffe000"])
        expectRefused(result)
        #expect(result.run.error.hasPrefix("\(result.map):1: out of table memory"), "\(result.run.error)")
    }

    @Test("A script needing more leaves than the limit is refused at once, naming its line")
    func tooManyLeavesRefusedBeforeBuilding() throws {
        let started = Date()
        let result = try build(["--format", "s2-64k", "--ipa-bits", "46", "--pa-bits", "48"],
                               script: "# 64K pages over 4T\n0x0 0x40000000000 0x10000 rw wb\n", timeLimit: 30)
        expectRefused(result)
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(result.run.error.hasPrefix("\(result.map):2: the mappings up to this line need more than 262144 leaves"), "\(result.run.error)")
    }

    @Test("An unaligned base is bad input: exit status 2")
    func unalignedBase() throws {
        let result = try build(["--format", "ept4", "--base", "0x40000800"])
        expectRefused(result)
        #expect(result.run.error.contains("--base 0x40000800 is not aligned to the 4K table page size"), "\(result.run.error)")
    }

    @Test("An option given twice is refused")
    func duplicateOption() throws {
        let result = try build(["--format", "ept4", "--format", "s2-4k"])
        expectRefused(result)
        #expect(result.run.error.contains("--format is given twice"), "\(result.run.error)")
    }

    @Test("A script without mappings builds the bare root and says so on stderr")
    func emptyScriptWarns() throws {
        let result = try build(["--format", "ept4"], script: "# nothing yet\n")
        #expect(result.run.status == 0)
        #expect(result.run.error.contains("\(result.map): warning: no mappings"), "\(result.run.error)")
    }
}
