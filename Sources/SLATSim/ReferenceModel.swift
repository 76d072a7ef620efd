import SLATCore

/// What the reference model says one guest page translates to.
@frozen
public struct ModelTranslation: Hashable, Sendable, CustomStringConvertible {
    /// Output address of the page.
    public var output: HostPhysicalAddress
    /// Permissions of the page.
    public var permissions: Permissions
    /// Size of the mapping request the page came from, as the caller
    /// recorded it (informative; tables may use smaller leaves).
    public var mappingSize: UInt64

    /// A model translation.
    @inlinable
    public init(output: HostPhysicalAddress, permissions: Permissions, mappingSize: UInt64) {
        self.output = output
        self.permissions = permissions
        self.mappingSize = mappingSize
    }

    public var description: String { "→ \(output) \(permissions)" }
}

/// One difference between a table and the reference model.
public struct ModelMismatch: Hashable, Sendable, CustomStringConvertible {
    /// The guest page that differs.
    public var address: GuestPhysicalAddress
    /// What the model says (`nil`: unmapped).
    public var expected: ModelTranslation?
    /// What the tables say: output, permissions and leaf size (`nil`: unmapped).
    public var actual: (output: HostPhysicalAddress, permissions: Permissions, leafSize: UInt64)?

    public static func == (lhs: ModelMismatch, rhs: ModelMismatch) -> Bool {
        lhs.address == rhs.address && lhs.expected == rhs.expected
            && lhs.actual?.output == rhs.actual?.output && lhs.actual?.permissions == rhs.actual?.permissions
            && lhs.actual?.leafSize == rhs.actual?.leafSize
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(address)
        hasher.combine(expected)
        hasher.combine(actual?.output)
    }

    public var description: String {
        let want = expected.map(\.description) ?? "unmapped"
        let got = actual.map { "→ \($0.output) \($0.permissions) (leaf \(formatSize($0.leafSize)))" } ?? "unmapped"
        return "\(address): model \(want), tables \(got)"
    }
}

/// The reference model of a guest-physical space: a plain map from each
/// guest page to its output and permissions, for differential tests of a
/// whole table (``differences(from:in:limit:)``).
///
/// A value type with no concurrency of its own: keep it on the thread that
/// drives the operations (or behind a lock).
public struct ReferenceModel: Sendable {
    /// Bytes of one model page (the format's granule).
    public let pageSize: UInt64
    /// The mapped pages, keyed by guest page number (address / ``pageSize``).
    public private(set) var pages: [UInt64: ModelTranslation] = [:]

    /// An empty model of pages of `pageSize` bytes (a power of two).
    public init(pageSize: UInt64) {
        // A test's own configuration: SLATSim is test support, never on a
        // VMM's path, and stopping here is that test failing at its setup.
        precondition(pageSize.nonzeroBitCount == 1, "page size must be a power of two")
        self.pageSize = pageSize
    }

    /// An empty model for `format`'s granule.
    public init<Format: PageTableFormat>(format: Format) { self.init(pageSize: format.pageSize) }

    /// Pages mapped.
    public var count: Int { pages.count }

    private func pageNumbers(_ range: GuestPhysicalRange) -> Range<UInt64> {
        // A test's own configuration: SLATSim is test support, never on a
        // VMM's path, and stopping here is that test failing at its setup.
        precondition(range.start.isAligned(to: pageSize) && range.size % pageSize == 0, "range not page-aligned")
        let first = range.start.rawValue / pageSize
        return first..<(first + range.size / pageSize)
    }

    /// Maps `range` to consecutive outputs from `output`.
    public mutating func map(_ range: GuestPhysicalRange, to output: HostPhysicalAddress, permissions: Permissions) {
        var next = output
        for page in pageNumbers(range) {
            pages[page] = ModelTranslation(output: next, permissions: permissions, mappingSize: range.size)
            next = next.advanced(by: pageSize)
        }
    }

    /// Unmaps `range`.
    public mutating func unmap(_ range: GuestPhysicalRange) {
        for page in pageNumbers(range) { pages.removeValue(forKey: page) }
    }

    /// Applies a permission change to every mapped page of `range` with
    /// `format`'s rules (`PageTableFormat/changingPermissions(ofLeaf:grant:revoke:)`:
    /// revoke wins; EPT drops write with read).
    public mutating func changePermissions<Format: PageTableFormat>(
        _ range: GuestPhysicalRange, grant: Permissions, revoke: Permissions, format: Format
    ) {
        var changed: [Permissions: Permissions] = [:]
        for page in pageNumbers(range) {
            guard var translation = pages[page] else { continue }
            let old = translation.permissions
            if let known = changed[old] {
                translation.permissions = known
            } else {
                let leaf = format.leafEntry(output: HostPhysicalAddress(0), attributes: LeafAttributes(permissions: old), atLevel: 0)
                let new = format.permissions(ofLeaf: format.changingPermissions(ofLeaf: leaf, grant: grant, revoke: revoke))
                changed[old] = new
                translation.permissions = new
            }
            pages[page] = translation
        }
    }

    /// What the model says `address` translates to.
    public func translation(of address: GuestPhysicalAddress) -> ModelTranslation? {
        guard var translation = pages[address.rawValue / pageSize] else { return nil }
        translation.output = translation.output.advanced(by: address.rawValue % pageSize)
        return translation
    }

    /// The differences between `table` and the model over `range` (the whole
    /// input space when `nil`), page by page, at most `limit` of them:
    /// every page the tables map must be in the model with the same output
    /// and permissions, and the tables must map every page of the model.
    ///
    /// Reads the tables without a lock: call it with no writer running.
    public func differences<Format: PageTableFormat, Memory: TableMemory>(
        from table: PageTable<Format, Memory>, in range: GuestPhysicalRange? = nil, limit: Int = 16
    ) -> [ModelMismatch] {
        // A test's own configuration: SLATSim is test support, never on a
        // VMM's path, and stopping here is that test failing at its setup.
        precondition(table.format.pageSize == pageSize, "model and table page sizes differ")
        var mismatches: [ModelMismatch] = []
        var matched = 0
        let window = range ?? GuestPhysicalRange(start: GuestPhysicalAddress(0), size: table.format.inputAddressSpaceSize)
        for leaf in table.leaves(in: window) {
            var address = max(leaf.guestAddress, window.start)
            let end = min(leaf.guestAddress.rawValue &+ leaf.size, window.end.rawValue)
            while address.rawValue < end {
                let output = leaf.output.advanced(by: address.rawValue - leaf.guestAddress.rawValue)
                let actual = (output: output, permissions: leaf.attributes.permissions, leafSize: leaf.size)
                let expected = pages[address.rawValue / pageSize]
                if let expected, expected.output == output, expected.permissions == actual.permissions {
                    matched += 1
                } else {
                    if expected != nil { matched += 1 }
                    if mismatches.count < limit {
                        mismatches.append(ModelMismatch(address: address, expected: expected, actual: actual))
                    }
                }
                address = address.advanced(by: pageSize)
            }
        }
        // Model pages in the window: by lookup when the window is the smaller side.
        let firstPage = window.start.rawValue / pageSize
        let windowPages = window.size / pageSize
        let expectedInWindow: [UInt64] = windowPages < UInt64(pages.count)
            ? (firstPage..<(firstPage + windowPages)).filter { pages[$0] != nil }
            : pages.keys.filter { window.contains(GuestPhysicalAddress($0 &* pageSize)) }
        if expectedInWindow.count != matched {
            for page in expectedInWindow.sorted() where mismatches.count < limit {
                let address = GuestPhysicalAddress(page * pageSize)
                if table.translate(address).translation == nil {
                    mismatches.append(ModelMismatch(address: address, expected: pages[page], actual: nil))
                }
            }
        }
        return mismatches
    }
}

/// `4K`, `2M`, `1G`... for sizes in messages.
func formatSize(_ size: UInt64) -> String {
    let units: [(UInt64, String)] = [(1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")]
    for (unit, suffix) in units where size >= unit && size % unit == 0 { return "\(size / unit)\(suffix)" }
    return "\(size)B"
}
