import SLAT

/// A fresh table for one repeat: a pre-faulted ``TableArena`` sized for a
/// mapping of smallest pages over the geometry, an empty ``PageTable``, a
/// ``PageTableContext`` and a ``CountingTLB``; plus the checks the
/// workloads run on it after the timed section.
final class TableFixture<Format: PageTableFormat> {
    /// The format of the table.
    let format: Format
    /// What is (or will be) mapped.
    let geometry: MappingGeometry
    /// Where the table pages come from.
    let arena: TableArena
    /// The table under test.
    let table: PageTable<Format, TableArena>
    /// The calling thread's page cache and reader slot.
    let context = PageTableContext()
    /// Counts the invalidations operations ask for.
    let tlb = CountingTLB()
    /// The benchmark format's name, for messages.
    let name: String

    /// A fresh arena and empty table for `geometry`.
    init(format: Format, geometry: MappingGeometry, name: String) throws(BenchFailure) {
        self.format = format
        self.geometry = geometry
        self.name = name
        // Root (with room to align a concatenated root), every table a full
        // mapping links, the pages splits at the ends may reserve, and slack.
        let pages = 2 * format.rootTableCount + geometry.tablePagesBelowRoot(for: format) + 4 * format.levelCount + 16
        do {
            arena = try TableArena(pageSize: format.tablePageSize, pageCount: pages, prefault: true)
            table = try PageTable(format: format, memory: arena, readerSlots: 1)
        } catch {
            throw .library("\(name): creating a table arena of \(pages) pages", error)
        }
    }

    /// The counters now.
    func snapshot() -> CounterSnapshot { CounterSnapshot(tlb: tlb, arena: arena) }

    /// Maps the whole range with smallest pages (untimed setup) and checks it.
    func mapWholeRange() throws(BenchFailure) {
        var batch = TLBFlushBatch()
        do {
            try table.map(geometry.range, to: HostPhysicalAddress(geometry.outputBase), attributes: MappingGeometry.attributes,
                          maximumLevel: 0, mode: .exclusive, context: context, batch: &batch, tlb: tlb)
        } catch {
            throw .library("\(name): mapping \(ByteSize.format(geometry.size)) for setup", error)
        }
        table.settle(batch, tlb: tlb, mode: .exclusive)
        try verifyEveryPage(permissions: MappingGeometry.attributes.permissions, after: "setup map")
    }

    /// Checks that every page of the range translates to its output address
    /// as a smallest-page leaf with the benchmark attributes, except for
    /// `permissions`.
    func verifyEveryPage(permissions: Permissions, after operation: String) throws(BenchFailure) {
        var expected = MappingGeometry.attributes
        expected.permissions = permissions
        var guest = geometry.guestBase
        while guest < geometry.guestEnd {
            let probe = guest &+ geometry.pageSize / 2 &+ 8
            guard let translation = table.translate(GuestPhysicalAddress(probe)).translation else {
                throw .verification("\(name) \(operation): 0x\(String(probe, radix: 16)) is not mapped")
            }
            guard translation.output.rawValue == geometry.expectedOutput(of: probe), translation.level == 0,
                  translation.attributes == expected else {
                throw .verification("\(name) \(operation): 0x\(String(probe, radix: 16)) translates to \(translation.output) at level \(translation.level) with \(translation.attributes.permissions), expected 0x\(String(geometry.expectedOutput(of: probe), radix: 16)) at level 0 with \(permissions)")
            }
            guest &+= geometry.pageSize
        }
    }

    /// Checks that the tables reachable from the root are exactly the root
    /// plus `belowRoot` pages.
    func verifyReachableTables(belowRoot: Int, after operation: String) throws(BenchFailure) {
        let reachable = table.reachableTablePages().count
        let expected = format.rootTableCount + belowRoot
        guard reachable == expected else {
            throw .verification("\(name) \(operation): \(reachable) table pages reachable, expected \(expected)")
        }
    }
}
