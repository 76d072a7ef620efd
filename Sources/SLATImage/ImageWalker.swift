import SLATCore

/// A present leaf found in an image.
public struct ImageLeaf: Hashable, Sendable {
    /// First guest address the leaf maps.
    public var guest: UInt64
    /// Height (0 = smallest page).
    public var level: Int
    /// Bytes the leaf maps.
    public var size: UInt64
    /// Output address of the leaf.
    public var output: UInt64
    /// Decoded attributes.
    public var attributes: LeafAttributes
    /// The raw entry.
    public var entry: UInt64
    /// Physical address of the entry.
    public var entryAddress: UInt64
    /// `false` for an EPT leaf that grants nothing (present to SLAT, not to hardware).
    public var isPresentToHardware: Bool
}

/// A malformed entry (or a warning about one) found in an image.
public struct ImageFinding: Hashable, Sendable {
    /// First guest address of the range the entry covers.
    public var guest: UInt64
    /// Bytes the entry covers.
    public var size: UInt64
    /// Height of the entry.
    public var level: Int
    /// Index of the entry in its table.
    public var index: Int
    /// Physical address of the entry.
    public var entryAddress: UInt64
    /// The raw entry.
    public var entry: UInt64
    /// What is wrong.
    public var problem: EntryProblem
}

/// Everything a walk of an image found, in guest address order.
public struct ImageContents: Sendable {
    /// Present leaves.
    public var leaves: [ImageLeaf] = []
    /// Malformed entries and warnings.
    public var findings: [ImageFinding] = []
    /// Physical addresses of the table pages reached (root pages first).
    public var tablePages: [UInt64] = []
}

/// Reads a table image the way the hardware walker would, from the root
/// down, without trusting any byte: every table address is bounds-checked,
/// each table page is walked at most once (so loops and shared subtrees in
/// a corrupted image cannot make the walk run away), and malformed entries
/// are reported as ``ImageFinding``s instead of being followed.
///
/// An immutable value over an immutable copy of the bytes: safe to use from
/// any thread; it takes no lock and involves no TLB.
public struct ImageWalker: Sendable {
    /// The format the image is read as.
    public let format: ImageFormat
    /// The image.
    public let image: TableImage
    /// Physical address of the root table(s).
    public let root: UInt64

    /// A walker over `image` rooted at `root`.
    ///
    /// - Throws: ``ImageError/invalidConfiguration(_:)`` when the image
    ///   would reach past the 64-bit physical address space (a base too
    ///   high for its size); ``ImageError/rootOutsideImage(root:base:size:)``
    ///   unless the root tables (all concatenated ones) lie inside the
    ///   image, aligned to a page.
    public init(format: ImageFormat, image: TableImage, root: UInt64) throws(ImageError) {
        let geometry = format.geometry
        // Every address of the image, and one past its end, must be a
        // 64-bit number, or the walk's address arithmetic would overflow.
        guard UInt64(image.bytes.count) <= UInt64.max - image.base else {
            throw .invalidConfiguration("an image of \(image.bytes.count) bytes at base \(NumberSyntax.hex(image.base)) reaches past the 64-bit physical address space")
        }
        let rootBytes = UInt64(geometry.rootEntryCount * 8)
        guard root & (geometry.pageSize - 1) == 0, image.contains(root, length: rootBytes) else {
            throw .rootOutsideImage(root: root, base: image.base, size: image.bytes.count)
        }
        self.format = format
        self.image = image
        self.root = root
    }

    /// Walks the whole tree.
    public func contents() -> ImageContents {
        var contents = ImageContents()
        var visited: Set<UInt64> = []
        let geometry = format.geometry
        let rootPages = max(1, geometry.rootEntryCount * 8 / geometry.tablePageSize)
        for page in 0..<rootPages { visited.insert(root + UInt64(page * geometry.tablePageSize)) }
        contents.tablePages = visited.sorted()
        walkTable(at: root, entryCount: geometry.rootEntryCount, level: geometry.rootLevel, guest: 0,
                  visited: &visited, into: &contents)
        return contents
    }

    func walkTable(
        at table: UInt64, entryCount: Int, level: Int, guest: UInt64,
        visited: inout Set<UInt64>, into contents: inout ImageContents
    ) {
        let geometry = format.geometry
        let size = geometry.entrySize(atLevel: level)
        for index in 0..<entryCount {
            let entryAddress = table + UInt64(index * 8)
            // The table was checked to lie inside the image before the walk came here.
            guard let entry = image.word(at: entryAddress) else { return }
            let entryGuest = guest + UInt64(index) * size
            func finding(_ problem: EntryProblem) -> ImageFinding {
                ImageFinding(guest: entryGuest, size: size, level: level, index: index,
                             entryAddress: entryAddress, entry: entry, problem: problem)
            }
            switch format.classify(entry, atLevel: level) {
            case .invalid:
                continue
            case .malformed(let problem):
                contents.findings.append(finding(problem))
            case .softwareOnlyLeaf, .leaf:
                let attributes = geometry.attributes(ofLeaf: entry, atLevel: level)
                let output = geometry.outputAddress(ofLeaf: entry, atLevel: level).rawValue
                let hardware = format.classify(entry, atLevel: level) != .softwareOnlyLeaf
                contents.leaves.append(ImageLeaf(
                    guest: entryGuest, level: level, size: size, output: output, attributes: attributes,
                    entry: entry, entryAddress: entryAddress, isPresentToHardware: hardware))
                if output < image.end && image.base < output &+ size {
                    contents.findings.append(finding(.outputInsideImage(output)))
                }
            case .table(let child):
                guard image.contains(child, length: UInt64(geometry.tablePageSize)) else {
                    contents.findings.append(finding(.tableOutsideImage(child)))
                    continue
                }
                guard visited.insert(child).inserted else {
                    contents.findings.append(finding(.tableAlreadyReached(child)))
                    continue
                }
                contents.tablePages.append(child)
                walkTable(at: child, entryCount: geometry.entriesPerTable, level: level - 1, guest: entryGuest,
                          visited: &visited, into: &contents)
            }
        }
    }
}
