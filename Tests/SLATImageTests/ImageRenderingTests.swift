import Testing
import SLATCore
import SLATImage

@Suite("Dump text and SVG rendering")
struct ImageRenderingTests {
    @Test("The dump prints one coalesced line per run with level, leaf count, permissions, type and A/D")
    func dumpLines() throws {
        let (_, walker) = try buildImage("""
            0x0        2M   0x80000000  rwx wb
            0x200000   16K  0x90000000  rw  uc  accessed=0
            0x204000   4K   0x90004000  rw  wc
            """, ImageConfiguration(kind: .ept4AccessedDirty))
        let (text, malformed) = ImageDumper(walker: walker).render()
        let lines = text.split(separator: "\n").map(String.init)
        #expect(malformed == 0)
        #expect(lines.count == 5)
        #expect(lines[1] == "0x000000000000-0x000000200000     2M  PDE L2    1x2M       rwx wb     A-  -> 0x80000000")
        #expect(lines[2] == "0x000000200000-0x000000204000    16K  PTE L1    4x4K       rw- uc     --  -> 0x90000000")
        #expect(lines[3] == "0x000000204000-0x000000205000     4K  PTE L1    1x4K       rw- wc     A-  -> 0x90004000")
        #expect(lines[4] == "---[ 3 ranges, 6 leaves, 0 malformed entries, 0 warnings ]---")
    }

    @Test("Runs split where the output address is not contiguous")
    func dumpSplitsDiscontiguousOutput() throws {
        let (_, walker) = try buildImage("0x0 4K 0x1000 rw wb\n0x1000 4K 0x5000 rw wb", ImageConfiguration(kind: .stageTwo4K))
        #expect(ImageDumper.ranges(of: walker.contents().leaves).count == 2)
    }

    @Test("The SVG colours each range by leaf size and draws malformed entries in red")
    func svgColoursAndFindings() throws {
        let (image, _) = try buildImage("0x0 2M 0x80000000 rwx wb\n0x200000 4K 0x90000000 r wb", ImageConfiguration(kind: .ept4))
        var bytes = image.bytes
        let page = try walker(over: bytes, like: image).contents().leaves[1].entryAddress
        poke(&bytes, base: image.configuration.base, at: page, peek(bytes, base: image.configuration.base, at: page) | 1 << 51)
        let svg = ImageSVGRenderer(walker: try walker(over: bytes, like: image)).render()
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(svg.hasSuffix("</svg>\n"))
        #expect(svg.contains("fill=\"\(ImageSVGRenderer.colour(forLeafSize: 2 << 20))\"><title>0x0-0x200000 2M 1x2M rwx wb"))
        #expect(svg.contains("stroke=\"#d62728\""))
        #expect(svg.contains("malformed entry 0 at \(NumberSyntax.hex(page)): reserved bits set: 0x8000000000000"))
    }
}
