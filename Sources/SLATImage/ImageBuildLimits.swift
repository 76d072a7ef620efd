import SLATCore

/// The most one `slat build` may produce, checked before anything is built
/// so that a script asking for more is refused at once instead of running
/// for minutes and writing hundreds of megabytes.
public enum ImageBuildLimits {
    /// Leaves one image may have: 2^18, one GiB mapped with 4 KiB pages.
    /// Every leaf is kept in memory and written as one object of
    /// `mappings.json` (about 250 bytes), so this also bounds the build's
    /// time, memory and output.
    public static let maximumLeafCount = 1 << 18

    /// Bytes of table memory one build may use (address space reserved up
    /// front; pages are only backed when used).
    public static let tableBytes = 1 << 30

    /// The number of leaves `request` needs: the largest leaf its guest and
    /// output alignment, its remaining size and `leaf=` allow at every
    /// step, as `PageTable` maps it; counting stops once it passes `limit`.
    public static func leafCount<Format: PageTableFormat>(of request: MappingRequest, format: Format, limit: Int) -> Int {
        let levels = (0...(request.maximumLevel ?? format.rootLevel)).reversed().filter(format.canHoldLeaf(atLevel:))
        var count = 0
        var guest = request.guest
        let end = request.guest + request.size
        while guest < end && count <= limit {
            let output = request.output.rawValue + (guest - request.guest)
            var step = format.pageSize
            for level in levels {
                let size = format.entrySize(atLevel: level)
                if (guest | output) & (size - 1) == 0 && end - guest >= size {
                    step = size
                    break
                }
            }
            guest += step
            count += 1
        }
        return count
    }

    /// Refuses `requests` when together they need more than
    /// ``maximumLeafCount`` leaves, naming the line where the count passes it.
    ///
    /// - Throws: ``ImageError/script(_:)`` with that one diagnostic.
    public static func checkLeafCount<Format: PageTableFormat>(
        of requests: [MappingRequest], format: Format, fileName: String
    ) throws(ImageError) {
        var total = 0
        for request in requests {
            total += leafCount(of: request, format: format, limit: maximumLeafCount - total)
            if total > maximumLeafCount {
                throw .script([ScriptDiagnostic(
                    file: fileName, line: request.line,
                    message: "the mappings up to this line need more than \(maximumLeafCount) leaves, the most one image may have (use larger aligned mappings, or split the script)")])
            }
        }
    }
}
