import Foundation
import Testing

/// `slat dump`, `translate` and `svg` on images placed where their
/// addresses cannot be represented, and the SVG's size.
@Suite("slat image readers")
struct ImageReaderCommandTests {
    /// Builds `script` for `format` and returns the image path.
    func image(_ script: String, format: String) throws -> String {
        let directory = try makeTemporaryDirectory()
        let map = try writeFile("g.map", script, in: directory)
        let out = directory.appendingPathComponent("vm").path
        let built = try runSlat(["build", "--format", format, "--map", map, "--out", out])
        #expect(built.status == 0)
        return out + "/tables.bin"
    }

    @Test("An image placed so it would end past 2^64 is refused by every reader", arguments: [
        ["dump"], ["svg"], ["translate", "0x0"],
    ])
    func imagePastTheAddressSpace(command: [String]) throws {
        let tables = try image("0x80000000 2M 0x80000000 rw wb\n", format: "s2-4k")
        let result = try runSlat([command[0], tables, "--format", "s2-4k", "--base", "0xfffffffffffff000",
                                  "--root", "0xfffffffffffff000"] + command.dropFirst())
        #expect(!result.signalled)
        #expect(result.status == 2, "\(result.error)")
        #expect(result.output.isEmpty)
        #expect(result.error.contains("reaches past the 64-bit physical address space"), "\(result.error)")
    }

    @Test("The SVG is wide enough for its longest row's text")
    func svgFitsItsText() throws {
        let tables = try image("0x9000000 64K 0x9000000 rw device leaf=4K\n", format: "s2-4k")
        let result = try runSlat(["svg", tables, "--format", "s2-4k", "--base", "0x48000000", "--root", "0x48000000"])
        #expect(result.status == 0)
        let row = "0x9000000-0x9010000 64K 16x4K rw- device -> 0x9000000"
        #expect(result.output.contains(row.replacingOccurrences(of: ">", with: "&gt;")))
        let width = result.output.firstMatch(of: /width="(\d+)"/).flatMap { Int($0.1) } ?? 0
        // The row's text starts at x = 620; a 12-pixel monospace character is 7.2 pixels wide.
        #expect(Double(width) >= 620 + Double(row.count) * 7.2, "width \(width)")
    }

    @Test("The SVG legend says what a bar's length means")
    func svgLegendExplainsBars() throws {
        let tables = try image("0x0 4K 0x1000 rw wb\n", format: "ept4")
        let result = try runSlat(["svg", tables, "--format", "ept4", "--base", "0x40000000", "--root", "0x40000000"])
        #expect(result.output.contains("bar length:"))
    }
}
