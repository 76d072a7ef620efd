import Foundation
import Testing

/// How `slat` reads the text of mapping scripts and registers files: line
/// endings, characters and encodings, case and signs, repeated keys.
@Suite("Script and registers text")
struct ScriptTextTests {
    /// Builds a script given as raw bytes.
    func build(_ bytes: [UInt8], format: String = "ept4") throws -> (run: SlatRun, map: String, out: String) {
        let directory = try makeTemporaryDirectory()
        let map = try writeFile("s.map", bytes, in: directory)
        let out = directory.appendingPathComponent("out").path
        return (try runSlat(["build", "--format", format, "--map", map, "--out", out]), map, out)
    }

    func build(_ text: String) throws -> (run: SlatRun, map: String, out: String) { try build(Array(text.utf8)) }

    @Test("Every line is built whatever the line endings", arguments: [
        "# c\r\n0x1000 0x1000 0x2000 rw wb\r\n0x2000 0x1000 0x3000 rw wb\r\n",
        "0x1000 0x1000 0x2000 rw wb # c\r\n0x2000 0x1000 0x3000 rw wb\r\n",
        "# c\r0x1000 0x1000 0x2000 rw wb\r0x2000 0x1000 0x3000 rw wb\r",
        "# c\n0x1000 0x1000 0x2000 rw wb\r\n0x2000 0x1000 0x3000 rw wb",
    ])
    func lineEndings(script: String) throws {
        let result = try build(script)
        #expect(result.run.status == 0, "\(result.run.error)")
        #expect(result.run.output.contains("2 leaves from 2 mappings"), "\(result.run.output)")
    }

    @Test("Line numbers count a CRLF as one line ending")
    func lineNumbersWithCRLF() throws {
        let result = try build("# c\r\n\r\n0x1000 0x1000 0x2000 rw purple\r\n")
        #expect(result.run.status == 2)
        #expect(result.run.error.hasPrefix("\(result.map):3: unknown memory type 'purple'"), "\(result.run.error)")
    }

    @Test("A control character inside a field is named, not hidden", arguments: [
        ("\u{0B}", "U+000B (vertical tab)"), ("\u{0C}", "U+000C (form feed)"), ("\u{A0}", "U+00A0 (no-break space)"),
    ])
    func controlCharacter(character: String, name: String) throws {
        let result = try build("0x1000 0x1000 0x2000 rw \(character)wb\n")
        #expect(result.run.status == 2)
        #expect(result.run.error.hasPrefix("\(result.map):1: unexpected character \(name) at column 25"), "\(result.run.error)")
        #expect(result.run.output.isEmpty)
    }

    @Test("A byte that is not UTF-8 is reported with its line and column, even in a comment")
    func invalidUTF8() throws {
        let result = try build(Array("0x1000 0x1000 0x2000 rw wb\n# caf".utf8) + [0xE9] + Array("\n".utf8))
        #expect(result.run.status == 2)
        #expect(result.run.error.hasPrefix("\(result.map):2: byte 6 is not valid UTF-8"), "\(result.run.error)")
    }

    @Test("Words of a script are case-insensitive")
    func caseInsensitiveWords() throws {
        let result = try build("0x1000 0X1000 0x2000 RW WB LEAF=4k ACCESSED=0\n")
        #expect(result.run.status == 0, "\(result.run.error)")
    }

    @Test("Numbers take no sign", arguments: ["+4096", "-4096", "0x+1000"])
    func signedNumbers(size: String) throws {
        let result = try build("0x1000 \(size) 0x2000 rw wb\n")
        #expect(result.run.status == 2)
        #expect(result.run.error.contains("bad size '\(size)'"), "\(result.run.error)")
    }

    @Test("A key given twice on a line is refused")
    func duplicateKey() throws {
        let result = try build("0x1000 0x1000 0x2000 rw wb leaf=4K leaf=2M\n")
        #expect(result.run.status == 2)
        #expect(result.run.error.hasPrefix("\(result.map):1: option 'leaf' is given twice"), "\(result.run.error)")
    }

    /// A built stage-2 image and its registers text.
    func stageTwoImage() throws -> (tables: String, registers: String, directory: URL) {
        let directory = try makeTemporaryDirectory()
        let map = try writeFile("g.map", "0x80000000 2M 0x80000000 rw wb\n", in: directory)
        let out = directory.appendingPathComponent("vm").path
        let built = try runSlat(["build", "--format", "s2-4k", "--map", map, "--out", out])
        #expect(built.status == 0)
        return (out + "/tables.bin", try String(contentsOfFile: out + "/registers.env", encoding: .utf8), directory)
    }

    @Test("slat translate takes a slat build output directory: its tables.bin and registers.env")
    func translateOutputDirectory() throws {
        let image = try stageTwoImage()
        let result = try runSlat(["translate", image.directory.appendingPathComponent("vm").path, "0x80001234"])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output == "0x80001234 -> 0x80001234 level=2 size=2M perms=rw- type=wb accessed\n")
    }

    @Test("A registers file with CRLF line endings reads like the original")
    func registersWithCRLF() throws {
        let image = try stageTwoImage()
        let registers = try writeFile("crlf.env", image.registers.replacingOccurrences(of: "\n", with: "\r\n"), in: image.directory)
        let result = try runSlat(["translate", image.tables, "--registers", registers, "0x80000000"])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output == "0x80000000 -> 0x80000000 level=2 size=2M perms=rw- type=wb accessed\n")
    }

    @Test("A registers value that contradicts FORMAT is refused, naming the key", arguments: [
        ("VTCR", "0x800d3559"), ("GRANULE", "0x10000"), ("START_LEVEL", "0x0"), ("ROOT_TABLES", "0x1"),
    ])
    func registersContradictingFormat(key: String, value: String) throws {
        let image = try stageTwoImage()
        let edited = image.registers.split(separator: "\n").map { $0.hasPrefix(key + "=") ? "\(key)=\(value)" : String($0) }
        let registers = try writeFile("edited.env", edited.joined(separator: "\n") + "\n", in: image.directory)
        let result = try runSlat(["translate", image.tables, "--registers", registers, "0x80000000"])
        #expect(result.status == 2)
        #expect(result.output.isEmpty)
        #expect(result.error.contains("\(key)=\(value) contradicts FORMAT=s2-4k"), "\(result.error)")
    }
}
