import Testing
import SLATCore
import SLATImage

@Suite("Mapping-script parser")
struct MappingScriptParserTests {
    @Test("Comments, blank lines, '_' and size suffixes are accepted and lines keep their numbers")
    func acceptsCommentsAndNumberSyntax() throws {
        let script = """
            # header

            0x0000_0000  2M  0x8000_0000  rw  wb   # trailing comment
            4194304      16K 0xC000_0000  r-x wt   leaf=4K accessed=0
            """
        let requests = try MappingScriptParser(format: ImageConfiguration(kind: .ept4).makeFormat(), fileName: "x").parse(script)
        #expect(requests.map(\.line) == [3, 4])
        #expect(requests[0].size == 2 << 20 && requests[0].output.rawValue == 0x8000_0000)
        #expect(requests[1].guest == 0x40_0000 && requests[1].size == 16 << 10)
        #expect(requests[1].permissions == .readExecute && requests[1].memoryType == .writeThrough)
        #expect(requests[1].maximumLevel == 0 && requests[1].accessed == false)
    }

    static let badLines: [(line: String, message: String)] = [
        ("0x0 2M 0x80000000 rw", "expected <guest-address>"),
        ("0xZZ 2M 0x80000000 rw wb", "bad guest address '0xZZ'"),
        ("0x0 2Q 0x80000000 rw wb", "bad size '2Q'"),
        ("0x0 2M 80000000M rw wb", "bad output address"),
        ("0x0 2M 0x80000000 rq wb", "'q' is not one of r, w, x, s, u or -"),
        ("0x0 2M 0x80000000 rw device", "unknown memory type 'device'"),
        ("0x0 2M 0x80000000 rw wb color=red", "unknown option 'color'"),
        ("0x0 2M 0x80000000 rw wb leaf", "bad option 'leaf'"),
        ("0x0 2M 0x80000000 rw wb leaf=32M", "leaf=32M is not a leaf size of this format (4K, 2M, 1G)"),
        ("0x0 2M 0x80000000 rw wb accessed=2", "bad value '2' for accessed"),
        ("0x0 0 0x80000000 rw wb", "size is zero"),
        ("0x800 4K 0x80000000 rw wb", "guest address 0x800 is not aligned to the 4K page size"),
        ("0x0 6000 0x80000000 rw wb", "size 0x1770 is not a multiple of the 4K page size"),
        ("0x0 4K 0x80000100 rw wb", "output address 0x80000100 is not aligned"),
        ("0xFFFFFFFFF000 8K 0x80000000 rw wb", "reaches past the 48-bit input address space"),
        ("0x0 8K 0xFFFFFFFFF000 rw wb", "reaches past the 48-bit physical address size"),
        ("0x0 4K 0x80000000 rs wb", "cannot be encoded in this format ('s' and 'u' need --mbec)"),
        ("0x0 4K 0x80000000 rw wb dirty=1", "dirty=1 needs an EPT format with accessed/dirty flags"),
    ]

    @Test("Each bad line is reported with its line number and what is wrong", arguments: badLines)
    func reportsBadLine(line: String, message: String) throws {
        let found = try diagnostics("# first line is a comment\n\n" + line)
        #expect(found.count == 1)
        #expect(found.first?.line == 3)
        #expect(found.first?.file == "bad.map")
        #expect(found.first?.message.contains(message) == true, "got: \(found.first?.message ?? "nothing")")
    }

    @Test("Every bad line of a script is reported, good lines are not")
    func reportsEveryBadLine() throws {
        let found = try diagnostics("""
            0x0 4K 0x1000 rw wb
            0x1000 4K 0x2000 rw xx
            0x2000 4K 0x3000 rw wb
            0x3000 4K 0x4000 rw wb bogus=1
            """)
        #expect(found.map(\.line) == [2, 4])
        #expect(found.map(\.description).allSatisfy { $0.hasPrefix("bad.map:") })
    }

    @Test("A mapping that overlaps an earlier one names the earlier line")
    func reportsOverlap() throws {
        let found = try diagnostics("0x0 2M 0x80000000 rw wb\n0x1FF000 8K 0x90000000 rw wb")
        #expect(found.count == 1 && found[0].line == 2)
        #expect(found[0].message.contains("overlaps the mapping on line 1"))
    }

    @Test("Stage 2 rejects EPT-only memory types, ipat and dirty with the line number")
    func stageTwoRejectsEPTOnlyOptions() throws {
        let found = try diagnostics("""
            0x0 4K 0x1000 rw wp
            0x1000 4K 0x2000 rw wb ipat=1
            0x2000 4K 0x3000 rw wb dirty=1
            0x3000 4K 0x4000 rw uc
            """, ImageConfiguration(kind: .stageTwo4K))
        #expect(found.map(\.line) == [1, 2, 3, 4])
        #expect(found[0].message.contains("unknown memory type 'wp'"))
        #expect(found[1].message.contains("ipat=1 applies to EPT formats only"))
        #expect(found[2].message.contains("dirty=1 needs an EPT format"))
    }

    @Test("Split execute rights need --xnx on stage 2 and --mbec on EPT")
    func splitExecuteNeedsFeature() throws {
        let plain = try diagnostics("0x0 4K 0x1000 ru wb", ImageConfiguration(kind: .stageTwo4K))
        #expect(plain.first?.message.contains("'s' and 'u' need --xnx") == true)
        #expect(try diagnostics("0x0 4K 0x1000 ru wb", ImageConfiguration(kind: .stageTwo4K, executeNeverSplit: true)).isEmpty)
        #expect(try diagnostics("0x0 4K 0x1000 rs wb", ImageConfiguration(kind: .ept4, modeBasedExecute: true)).isEmpty)
    }

    @Test("EPT write without read is accepted and marked for literal encoding")
    func eptWriteWithoutReadIsAccepted() throws {
        let requests = try MappingScriptParser(format: ImageConfiguration(kind: .ept4).makeFormat(), fileName: "x")
            .parse("0x0 4K 0x1000 w wb\n0x1000 4K 0x2000 wx wb")
        #expect(requests.map(\.encodedWithoutRead) == [true, true])
        #expect(requests[0].permissions == .write)
    }

    @Test("A leaf size larger than the granule's pages is rejected for stage 2 with 64K pages")
    func stageTwo64KLeafSizes() throws {
        let found = try diagnostics("0x0 2M 0x80000000 rw wb leaf=2M", ImageConfiguration(kind: .stageTwo64K))
        #expect(found.first?.message.contains("(64K, 512M)") == true)
    }
}

@Suite("Number syntax")
struct NumberSyntaxTests {
    @Test("Hex, decimal, underscores and K/M/G suffixes parse; junk and overflow do not")
    func parsesNumbers() {
        #expect(NumberSyntax.parse("0x4000_0000") == 0x4000_0000)
        #expect(NumberSyntax.parse("1_024") == 1024)
        #expect(NumberSyntax.parse("2M") == 2 << 20)
        #expect(NumberSyntax.parse("1G") == 1 << 30)
        #expect(NumberSyntax.parse("2M", allowsSuffix: false) == nil)
        #expect(NumberSyntax.parse("0x") == nil)
        #expect(NumberSyntax.parse("-1") == nil)
        #expect(NumberSyntax.parse("99999999999T") == nil)
    }

    @Test("Sizes print with the largest exact unit")
    func printsSizes() {
        #expect(NumberSyntax.size(4096) == "4K")
        #expect(NumberSyntax.size(3 << 20) == "3M")
        #expect(NumberSyntax.size(1 << 30) == "1G")
        #expect(NumberSyntax.size(1536) == "1536")
    }
}
