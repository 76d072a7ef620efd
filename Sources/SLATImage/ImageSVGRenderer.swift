import Foundation
import SLATCore

/// Draws the guest-physical space of an image as SVG: an overview strip of
/// the mapped part of the space, then one row per dump range with a bar
/// coloured by leaf size (longer for larger ranges), its permissions as
/// three r/w/x cells, and malformed entries as red rows.
public struct ImageSVGRenderer: Sendable {
    /// The walker giving the format, image and root.
    public let walker: ImageWalker
    /// Rows drawn at most (the rest are summarised in one line).
    public var maximumRows: Int

    /// A renderer over the walker's image.
    public init(walker: ImageWalker, maximumRows: Int = 400) {
        self.walker = walker
        self.maximumRows = maximumRows
    }

    /// The fill colour of leaves of `size` bytes.
    public static func colour(forLeafSize size: UInt64) -> String {
        switch size {
        case 4 << 10: "#4e79a7"
        case 16 << 10: "#76b7b2"
        case 64 << 10: "#59a14f"
        case 2 << 20: "#f28e2b"
        case 32 << 20: "#edc948"
        case 512 << 20: "#b07aa1"
        case 1 << 30: "#e15759"
        default: "#9c755f"
        }
    }

    /// The SVG document.
    public func render() -> String {
        let contents = walker.contents()
        let format = walker.format
        let ranges = ImageDumper.ranges(of: contents.leaves)
        let rowHeight = 18
        let top = 110
        enum Row { case range(DumpRange), finding(ImageFinding) }
        var rows: [Row] = ranges.map { .range($0) } + contents.findings.map { .finding($0) }
        rows.sort { lhs, rhs in
            func key(_ row: Row) -> UInt64 {
                switch row {
                case .range(let range): range.guest
                case .finding(let finding): finding.guest
                }
            }
            return key(lhs) < key(rhs)
        }
        let shown = rows.prefix(maximumRows)
        // Wide enough for the longest text: each row's text starts at a
        // fixed column, and a character of the 12-pixel monospace font is
        // at most 0.6 em wide.
        var right = 0
        for row in shown {
            switch row {
            case .range(let range): right = max(right, Self.textEnd(x: 620, summary(range)))
            case .finding(let finding): right = max(right, Self.textEnd(x: 130, findingText(finding)))
            }
        }
        let legendX = 10 + 120 * (0...format.geometry.rootLevel).filter(format.geometry.canHoldLeaf(atLevel:)).count
        right = max(right, Self.textEnd(x: legendX, Self.stripLegend), Self.textEnd(x: 10, Self.barLegend))
        let width = max(1000, right + 10)
        let height = top + (shown.count + 3) * rowHeight + 60
        var svg: [String] = []
        svg.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"monospace\" font-size=\"12\">")
        svg.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>")
        let title = "\(ImageDumper(walker: walker).formatName), root \(NumberSyntax.hex(walker.root)): "
            + "\(contents.leaves.count) leaves, \(contents.findings.filter(\.problem.isFatal).count) malformed entries"
        svg.append(text(10, 20, escape(title), bold: true))

        // Overview: [0, end) where end is the mapped hull rounded up to a power of two.
        let hullEnd = ranges.map { $0.guest &+ $0.size }.max() ?? format.geometry.pageSize
        var end: UInt64 = format.geometry.pageSize
        while end < hullEnd && end < 1 << 62 { end <<= 1 }
        let stripX = 10.0, stripWidth = Double(width - 20), stripY = 40
        svg.append("<rect x=\"\(stripX)\" y=\"\(stripY)\" width=\"\(stripWidth)\" height=\"30\" fill=\"#eeeeee\" stroke=\"#999999\"/>")
        for range in ranges {
            let x = stripX + stripWidth * Double(range.guest) / Double(end)
            let w = max(1.0, stripWidth * Double(range.size) / Double(end))
            let opacity = range.attributes.permissions.contains(.write) ? "1" : (range.attributes.permissions.isEmpty ? "0.35" : "0.7")
            svg.append("<rect x=\"\(format2(x))\" y=\"\(stripY)\" width=\"\(format2(w))\" height=\"30\" fill=\"\(Self.colour(forLeafSize: range.leafSize))\" fill-opacity=\"\(opacity)\"><title>\(escape(summary(range)))</title></rect>")
        }
        svg.append(text(10, stripY + 45, "guest-physical 0x0"))
        svg.append(text(width - 10, stripY + 45, NumberSyntax.hex(end) + " (" + NumberSyntax.size(end) + ")", anchor: "end"))

        // One row per range or finding.
        var y = top
        for row in shown {
            switch row {
            case .range(let range):
                svg.append(text(10, y + 13, NumberSyntax.hex(range.guest, width: 12)))
                let exponent = max(0, 63 - range.size.leadingZeroBitCount - format.geometry.granuleShift)
                let barWidth = min(420, 20 + exponent * 14)
                svg.append("<rect x=\"130\" y=\"\(y + 2)\" width=\"\(barWidth)\" height=\"\(rowHeight - 4)\" fill=\"\(Self.colour(forLeafSize: range.leafSize))\"><title>\(escape(summary(range)))</title></rect>")
                let permissions = range.attributes.permissions
                let cells: [(String, Bool, String)] = [
                    ("r", permissions.contains(.read), "#59a14f"), ("w", permissions.contains(.write), "#e15759"),
                    (permissions.description.suffix(1) == "-" ? "x" : String(permissions.description.suffix(1)),
                     !permissions.intersection(.execute).isEmpty, "#b07aa1"),
                ]
                for (offset, cell) in cells.enumerated() {
                    let x = 560 + offset * 18
                    svg.append("<rect x=\"\(x)\" y=\"\(y + 2)\" width=\"16\" height=\"\(rowHeight - 4)\" fill=\"\(cell.1 ? cell.2 : "#dddddd")\"/>")
                    svg.append(text(x + 8, y + 13, cell.1 ? cell.0 : "-", anchor: "middle", colour: cell.1 ? "white" : "#999999"))
                }
                svg.append(text(620, y + 13, escape(summary(range))))
            case .finding(let finding):
                let colour = finding.problem.isFatal ? "#d62728" : "#ff9f1c"
                svg.append("<rect x=\"8\" y=\"\(y + 1)\" width=\"\(width - 16)\" height=\"\(rowHeight - 2)\" fill=\"none\" stroke=\"\(colour)\"/>")
                svg.append(text(10, y + 13, NumberSyntax.hex(finding.guest, width: 12), colour: colour))
                svg.append(text(130, y + 13, escape(findingText(finding)), colour: colour))
            }
            y += rowHeight
        }
        if rows.count > shown.count {
            svg.append(text(10, y + 13, "… \(rows.count - shown.count) more rows (see slat dump)"))
            y += rowHeight
        }

        // Legend: one swatch per leaf size the format has.
        y += rowHeight
        var x = 10
        let geometry = format.geometry
        for level in 0...geometry.rootLevel where geometry.canHoldLeaf(atLevel: level) {
            let size = geometry.entrySize(atLevel: level)
            svg.append("<rect x=\"\(x)\" y=\"\(y)\" width=\"14\" height=\"14\" fill=\"\(Self.colour(forLeafSize: size))\"/>")
            svg.append(text(x + 20, y + 12, "\(NumberSyntax.size(size)) leaves"))
            x += 120
        }
        svg.append(text(x, y + 12, Self.stripLegend))
        svg.append(text(10, y + 12 + rowHeight, Self.barLegend))
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    static let stripLegend = "strip: opaque = writable, lighter = read-only, faint = no access"
    static let barLegend = "bar length: 20 px + 14 px per doubling of the range size over one page (log scale)"

    /// The x coordinate where `content` ends when drawn from `x`.
    static func textEnd(x: Int, _ content: String) -> Int {
        x + (content.count * 72 + 9) / 10
    }

    func findingText(_ finding: ImageFinding) -> String {
        "\(finding.problem.isFatal ? "malformed" : "warning") entry \(finding.index) at \(NumberSyntax.hex(finding.entryAddress)): \(finding.problem)"
    }

    func summary(_ range: DumpRange) -> String {
        let format = walker.format
        return "\(NumberSyntax.hex(range.guest))-\(NumberSyntax.hex(range.guest &+ range.size)) \(NumberSyntax.size(range.size))"
            + " \(range.leafCount)x\(NumberSyntax.size(range.leafSize)) \(range.attributes.permissions)"
            + " \(format.name(of: range.attributes.memoryType)) -> \(NumberSyntax.hex(range.output))"
    }

    func text(_ x: Int, _ y: Int, _ content: String, bold: Bool = false, anchor: String = "start", colour: String = "black") -> String {
        "<text x=\"\(x)\" y=\"\(y)\" text-anchor=\"\(anchor)\" fill=\"\(colour)\"\(bold ? " font-weight=\"bold\"" : "")>\(content)</text>"
    }

    func text(_ x: Double, _ y: Int, _ content: String) -> String { text(Int(x), y, content) }

    func format2(_ value: Double) -> String {
        let scaled = (value * 100).rounded() / 100
        return String(scaled)
    }

    func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
