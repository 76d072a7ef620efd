import SLATCore

/// A run of leaves that a dump prints as one line: contiguous in guest and
/// output addresses, at one level, with the same attributes.
public struct DumpRange: Hashable, Sendable {
    /// First guest address.
    public var guest: UInt64
    /// Bytes covered.
    public var size: UInt64
    /// First output address.
    public var output: UInt64
    /// Height of the leaves.
    public var level: Int
    /// Bytes one leaf maps.
    public var leafSize: UInt64
    /// The leaves' attributes.
    public var attributes: LeafAttributes
    /// `false` for EPT leaves that grant nothing (hardware sees no entry).
    public var isPresentToHardware: Bool

    /// Leaves in the run.
    public var leafCount: UInt64 { size / leafSize }
}

/// Prints an image like the kernel's page-table dumps: one line per run of
/// similar leaves (range, size, level, leaf count and size, permissions,
/// memory type, accessed/dirty, output), with malformed entries reported
/// in place, in guest address order.
public struct ImageDumper: Sendable {
    /// The walker giving the format, image and root.
    public let walker: ImageWalker

    /// A dumper over the walker's image.
    public init(walker: ImageWalker) { self.walker = walker }

    /// Coalesces `leaves` (in guest order) into runs.
    public static func ranges(of leaves: [ImageLeaf]) -> [DumpRange] {
        var ranges: [DumpRange] = []
        for leaf in leaves {
            if var last = ranges.last, last.guest &+ last.size == leaf.guest, last.output &+ last.size == leaf.output,
               last.level == leaf.level, last.attributes == leaf.attributes,
               last.isPresentToHardware == leaf.isPresentToHardware {
                last.size += leaf.size
                ranges[ranges.count - 1] = last
            } else {
                ranges.append(DumpRange(
                    guest: leaf.guest, size: leaf.size, output: leaf.output, level: leaf.level, leafSize: leaf.size,
                    attributes: leaf.attributes, isPresentToHardware: leaf.isPresentToHardware))
            }
        }
        return ranges
    }

    /// The name of an entry at a level in the architecture's terms with its
    /// number: EPT `PML5E L5` ... `PTE L1`, stage 2 `L0` ... `L3`.
    public func levelName(_ level: Int) -> String {
        let architectural = walker.format.architecturalLevel(level)
        if walker.format.isEPT {
            return ["PTE", "PDE", "PDPTE", "PML4E", "PML5E"][min(max(architectural - 1, 0), 4)] + " L\(architectural)"
        }
        return "L\(architectural)"
    }

    /// The dump text and the number of fatal findings (malformed entries).
    public func render() -> (text: String, malformedCount: Int) {
        let contents = walker.contents()
        let format = walker.format
        let geometry = format.geometry
        let width = (geometry.inputAddressBits + 3) / 4
        var lines: [String] = []
        lines.append("---[ \(formatName) root \(NumberSyntax.hex(walker.root)), image \(NumberSyntax.hex(walker.image.base))-"
            + "\(NumberSyntax.hex(walker.image.end)) (\(walker.image.bytes.count) bytes), \(contents.tablePages.count) table pages reached ]---")
        let ranges = Self.ranges(of: contents.leaves)
        var findings = contents.findings[...]
        func flushFindings(before guest: UInt64?) {
            while let finding = findings.first, guest.map({ finding.guest < $0 }) ?? true {
                findings.removeFirst()
                lines.append(findingLine(finding, width: width))
            }
        }
        for range in ranges {
            flushFindings(before: range.guest)
            let attributes = range.attributes
            var line = NumberSyntax.hex(range.guest, width: width) + "-" + NumberSyntax.hex(range.guest &+ range.size, width: width)
            line += " " + pad(NumberSyntax.size(range.size), 6)
            line += "  " + pad(levelName(range.level), 9, left: true)
            line += " " + pad("\(range.leafCount)x\(NumberSyntax.size(range.leafSize))", 10, left: true)
            line += " " + attributes.permissions.description
            line += " " + pad(format.name(of: attributes.memoryType), 6, left: true)
            line += attributes.accessed ? " A" : " -"
            line += attributes.dirty ? "D" : "-"
            line += "  -> " + NumberSyntax.hex(range.output)
            if !range.isPresentToHardware { line += "  (no access: not present to hardware)" }
            lines.append(line)
        }
        flushFindings(before: nil)
        let malformed = contents.findings.filter(\.problem.isFatal).count
        let warnings = contents.findings.count - malformed
        lines.append("---[ \(ranges.count) ranges, \(contents.leaves.count) leaves, \(malformed) malformed entries, \(warnings) warnings ]---")
        return (lines.joined(separator: "\n") + "\n", malformed)
    }

    var formatName: String {
        switch walker.format {
        case .ept(let format):
            "EPT \(format.levelCount)-level\(format.accessedDirtyEnabled ? " A/D" : "")\(format.modeBasedExecute ? " MBEC" : "")"
        case .stageTwo(let format):
            "stage 2 \(NumberSyntax.size(UInt64(format.granule.byteCount))) granule, \(format.inputAddressBits)-bit IPA, start level \(format.startLevel)\(format.executeNeverSplit ? " XNX" : "")\(format.forcesWriteBack ? " FWB" : "")\(format.lpa2 ? " LPA2" : "")"
        }
    }

    func findingLine(_ finding: ImageFinding, width: Int) -> String {
        let marker = finding.problem.isFatal ? "!! malformed" : "!! warning"
        return "\(marker) \(levelName(finding.level)) entry \(finding.index)"
            + " at \(NumberSyntax.hex(finding.entryAddress)) = \(NumberSyntax.hex(finding.entry, width: 16))"
            + " (guest \(NumberSyntax.hex(finding.guest, width: width))-\(NumberSyntax.hex(finding.guest &+ finding.size, width: width))): "
            + finding.problem.description
    }

    func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return left ? text + fill : fill + text
    }
}
