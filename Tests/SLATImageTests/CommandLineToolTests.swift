import Foundation
import Testing
import SLATImage

/// Runs the built `slat` executable end to end (it sits next to the test bundle).
@Suite("slat command line")
struct CommandLineToolTests {
    @Test("build writes the contract's files and translate --registers reads them back")
    func buildThenTranslate() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let map = directory.appendingPathComponent("vm.map")
        try "0x0 2M 0x80000000 rwx wb\n0x200000 4K 0x90000000 w wb # probe\n".write(to: map, atomically: true, encoding: .utf8)
        let out = directory.appendingPathComponent("out").path
        let build = try runSlat(["build", "--format", "ept4", "--map", map.path, "--out", out])
        #expect(build.status == 0, "\(build.error)")
        for name in ["tables.bin", "registers.env", "registers.json", "mappings.json"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + name))
        }
        let env = try String(contentsOfFile: out + "/registers.env", encoding: .utf8)
        #expect(env.hasPrefix("FORMAT=ept4\nBASE=0x40000000\nROOT=0x40000000\nEPTP=0x4000001e\n"))
        let translate = try runSlat(["translate", out + "/tables.bin", "--registers", out + "/registers.env", "0x1000", "0x200000", "0x400000"])
        #expect(translate.status == 0)
        #expect(translate.output == """
            0x1000 -> 0x80001000 level=2 size=2M perms=rwx type=wb accessed
            0x200000 fault=misconfiguration level=1
            0x400000 fault=not-present level=2

            """)
        let dump = try runSlat(["dump", out + "/tables.bin", "--format", "ept4", "--base", "0x40000000", "--root", "0x40000000"])
        #expect(dump.status == 1)   // the write-only probe is a malformed entry
        #expect(dump.output.contains("!! malformed PTE L1 entry 0"))
    }

    @Test("A bad script line is reported as FILE:LINE with exit status 2")
    func badScriptExitsTwo() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let map = directory.appendingPathComponent("bad.map")
        try "# ok\n0x0 4K 0x1000 rw wb\n0x1000 4K 0x2000 rw purple\n".write(to: map, atomically: true, encoding: .utf8)
        let result = try runSlat(["build", "--format", "s2-4k", "--map", map.path, "--out", directory.appendingPathComponent("out").path])
        #expect(result.status == 2)
        #expect(result.error.hasPrefix("\(map.path):3: unknown memory type 'purple'"))
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("out").path))
    }

    @Test("Usage errors exit with status 2 and say what is wrong", arguments: [
        (["build", "--format", "ept9", "--map", "x", "--out", "y"], "unknown format 'ept9'"),
        (["build", "--format", "ept4", "--out", "y"], "--map FILE is required"),
        (["dump", "x.bin", "--format", "ept4", "--base", "0x40000000"], "--root is required"),
        (["translate", "x.bin", "--frobnicate"], "unknown option --frobnicate"),
        (["explode"], "unknown command 'explode'"),
    ])
    func usageErrors(arguments: [String], message: String) throws {
        let result = try runSlat(arguments)
        #expect(result.status == 2)
        #expect(result.error.contains(message), "\(result.error)")
    }
}
