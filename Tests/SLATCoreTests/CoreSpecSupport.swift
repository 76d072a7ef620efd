import Dispatch
import Foundation
import Synchronization
import Testing
import SLATArm64
import SLATCore
import SLATx86

// Shared helpers of the SLATCore specification tests: a deterministic PRNG,
// the formats the tests run over, TLB doubles, a table-memory wrapper with
// hooks for forcing interleavings, structural checks of table trees and a
// small thread harness for the shared-mode stress tests.

// MARK: - Deterministic randomness

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast and deterministic, so a
/// failing randomised test is reproduced by its seed alone.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in `0..<bound` (`bound > 0`), by multiply-high: deterministic
    /// whatever the standard library's own `random(in:)` algorithm is.
    mutating func below(_ bound: UInt64) -> UInt64 {
        precondition(bound > 0)
        return next().multipliedFullWidth(by: bound).high
    }

    mutating func below(_ bound: Int) -> Int { Int(below(UInt64(bound))) }

    /// `true` with probability `percent` / 100.
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    mutating func pick<T>(_ values: [T]) -> T { values[below(values.count)] }
}

// MARK: - Formats under test

/// The format configurations the parameterised tests run over, each with a
/// guest window large enough for every leaf size it has (so huge leaves,
/// splits and merges all happen) and placed to exercise an edge: the top of
/// the address space, or the boundary between concatenated root tables.
enum FormatCase: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case ept4
    case ept5
    case stageTwo4KiB40
    case stageTwo16KiB40
    case stageTwo64KiB42

    var testDescription: String {
        switch self {
        case .ept4: "EPT 4-level"
        case .ept5: "EPT 5-level"
        case .stageTwo4KiB40: "stage 2, 4 KiB granule, 40-bit IPA"
        case .stageTwo16KiB40: "stage 2, 16 KiB granule, 40-bit IPA"
        case .stageTwo64KiB42: "stage 2, 64 KiB granule, 42-bit IPA"
        }
    }

    /// The format (an existential: tests open it into generic helpers).
    var format: any PageTableFormat {
        switch self {
        case .ept4: try! ExtendedPageTableFormat(levelCount: 4)
        case .ept5: try! ExtendedPageTableFormat(levelCount: 5)
        case .stageTwo4KiB40: try! StageTwoFormat(granule: .size4KiB, inputAddressBits: 40)
        case .stageTwo16KiB40: try! StageTwoFormat(granule: .size16KiB, inputAddressBits: 40)
        case .stageTwo64KiB42: try! StageTwoFormat(granule: .size64KiB, inputAddressBits: 42, outputAddressBits: 48)
        }
    }

    /// The guest window randomised tests confine their operations to.
    var window: GuestPhysicalRange {
        let gib: UInt64 = 1 << 30
        let mib: UInt64 = 1 << 20
        switch self {
        // Two 1 GiB slots, neither at address 0.
        case .ept4: return GuestPhysicalRange(start: GuestPhysicalAddress(gib), size: 2 * gib)
        // The last 2 GiB of the 57-bit space: walks that end at the top.
        case .ept5: return GuestPhysicalRange(start: GuestPhysicalAddress((1 << 57) - 2 * gib), size: 2 * gib)
        // Across the boundary of the two concatenated root tables (512 GiB).
        case .stageTwo4KiB40: return GuestPhysicalRange(start: GuestPhysicalAddress((1 << 39) - gib), size: 2 * gib)
        // Across the boundary of two of the sixteen root tables (64 GiB each).
        case .stageTwo16KiB40: return GuestPhysicalRange(start: GuestPhysicalAddress((1 << 36) - 256 * mib), size: 512 * mib)
        // The last 2 GiB of the 42-bit space: four 512 MiB block slots.
        case .stageTwo64KiB42: return GuestPhysicalRange(start: GuestPhysicalAddress((1 << 42) - 2 * gib), size: 2 * gib)
        }
    }

    /// Table pages the tests' arenas get.
    var arenaPages: Int {
        switch self {
        case .ept4, .ept5, .stageTwo4KiB40: 4096
        case .stageTwo16KiB40: 1024
        case .stageTwo64KiB42: 256
        }
    }
}

/// An arena sized for `format`'s granule.
func makeArena<F: PageTableFormat>(for format: F, pages: Int) throws -> TableArena {
    try TableArena(pageSize: format.tablePageSize, pageCount: pages, prefault: false)
}

extension PageTableFormat {
    /// Leaf levels, smallest first.
    var leafLevels: [Int] { (0...rootLevel).filter { canHoldLeaf(atLevel: $0) } }

    /// Every permission set this format can encode.
    var encodablePermissions: [Permissions] {
        (UInt8(0)..<16).map { Permissions(rawValue: $0) }.filter { canEncode($0) }
    }

    /// Memory types this format can encode.
    var encodableMemoryTypes: [MemoryType] {
        let all: [MemoryType] = [.writeBack, .writeThrough, .writeCombining, .uncached, .writeProtected, .device]
        return all.filter { (try? validate(LeafAttributes(permissions: [], memoryType: $0))) != nil }
    }

    /// The root table pages of a table rooted at `root`.
    func rootPages(_ root: HostPhysicalAddress) -> [HostPhysicalAddress] {
        (0..<rootTableCount).map { root.advanced(by: UInt64($0 * tablePageSize)) }
    }
}

extension GuestPhysicalRange {
    init(_ start: UInt64, size: UInt64) { self.init(start: GuestPhysicalAddress(start), size: size) }
}

extension LeafMapping {
    var end: UInt64 { guestAddress.rawValue + size }
}

// MARK: - TLB doubles

/// One invalidation a TLB was asked for.
enum Invalidation: Hashable, CustomStringConvertible {
    case address(GuestPhysicalAddress, level: Int?)
    case range(GuestPhysicalRange)
    case all

    var description: String {
        switch self {
        case .address(let a, let level): "address(\(a), level: \(level.map(String.init) ?? "nil"))"
        case .range(let r): "range\(r)"
        case .all: "all"
        }
    }
}

/// A single-threaded TLB that records every invalidation in order and can
/// model cached translations: ``cache(_:)`` loads leaves as a CPU would, and
/// each invalidation drops the cached leaves it reaches — by address only
/// the one *of the hinted level* (the ``TLB`` contract allows an
/// implementation to keep other sizes), by range every size.
// @unchecked Sendable: used from one thread at a time.
final class RecordingTLB: TLB, @unchecked Sendable {
    private(set) var log: [Invalidation] = []
    /// Cached leaves by level (height), keyed by their first address.
    private var cachedByLevel: [[UInt64: LeafMapping]] = Array(repeating: [:], count: 8)
    /// Runs at every invalidation, before it is recorded.
    var onInvalidate: ((Invalidation) -> Void)?

    var cached: [LeafMapping] {
        cachedByLevel.flatMap(\.values).sorted { $0.guestAddress < $1.guestAddress }
    }

    func invalidate(address: GuestPhysicalAddress, level: LeafLevel?) {
        record(.address(address, level: level?.height))
        for cachedLevel in cachedByLevel.indices where level == nil || cachedLevel == level?.height {
            guard let size = cachedByLevel[cachedLevel].first?.value.size else { continue }
            cachedByLevel[cachedLevel].removeValue(forKey: address.rawValue & ~(size - 1))
        }
    }

    func invalidate(range: GuestPhysicalRange) {
        record(.range(range))
        for level in cachedByLevel.indices {
            let reached = cachedByLevel[level].values.filter {
                $0.guestAddress.rawValue < range.end.rawValue && range.start.rawValue < $0.end
            }
            for leaf in reached { cachedByLevel[level].removeValue(forKey: leaf.guestAddress.rawValue) }
        }
    }

    func invalidateAll() {
        record(.all)
        for level in cachedByLevel.indices { cachedByLevel[level].removeAll() }
    }

    private func record(_ invalidation: Invalidation) {
        onInvalidate?(invalidation)
        log.append(invalidation)
    }

    /// Caches `leaves` (replacing what was cached).
    func cache(_ leaves: [LeafMapping]) {
        for level in cachedByLevel.indices { cachedByLevel[level].removeAll() }
        for leaf in leaves { cachedByLevel[leaf.level][leaf.guestAddress.rawValue] = leaf }
    }

    func clearLog() { log.removeAll() }

    var counts: TLBInvalidationCounts {
        var counts = TLBInvalidationCounts()
        for entry in log {
            switch entry {
            case .address: counts.addresses += 1
            case .range: counts.ranges += 1
            case .all: counts.contexts += 1
            }
        }
        return counts
    }
}

/// The cached leaves that no longer describe the tables: some page they map
/// is now unmapped, maps elsewhere, has other attributes or lost a
/// permission. (Gaining a permission without a flush is allowed, rule 3.)
func staleTranslations<F: PageTableFormat, M: TableMemory>(
    _ cached: [LeafMapping], in table: PageTable<F, M>
) -> [String] {
    var problems: [String] = []
    for old in cached {
        let now = table.leaves(in: GuestPhysicalRange(start: old.guestAddress, size: old.size))
        var covered: UInt64 = 0
        var mismatch: String?
        for leaf in now {
            let start = max(old.guestAddress.rawValue, leaf.guestAddress.rawValue)
            let end = min(old.end, leaf.end)
            guard start < end else { continue }
            covered += end - start
            let oldOutput = old.output.rawValue + (start - old.guestAddress.rawValue)
            let newOutput = leaf.output.rawValue + (start - leaf.guestAddress.rawValue)
            var sameOtherwise = leaf.attributes
            sameOtherwise.permissions = old.attributes.permissions
            if oldOutput != newOutput || sameOtherwise != old.attributes
                || !leaf.attributes.permissions.isSuperset(of: old.attributes.permissions) {
                mismatch = "cached level-\(old.level) leaf \(old.guestAddress)→\(old.output) \(old.attributes.permissions)"
                    + " is now level-\(leaf.level) leaf \(leaf.guestAddress)→\(leaf.output) \(leaf.attributes.permissions)"
                break
            }
        }
        if let mismatch {
            problems.append(mismatch)
        } else if covered != old.size {
            problems.append("cached level-\(old.level) leaf \(old.guestAddress)→\(old.output) is partly unmapped")
        }
    }
    return problems
}

// MARK: - Table memory with hooks

/// A ``TableMemory`` that forwards to a ``TableArena`` and runs test hooks
/// at chosen calls, to force an interleaving of two shared-mode operations
/// deterministically on one thread.
// @unchecked Sendable: the hooks are set and run on the test's thread only.
final class HookedMemory: TableMemory, @unchecked Sendable {
    let arena: TableArena
    /// Runs after `adjustLiveEntryCount` has adjusted, with its arguments.
    var afterAdjust: ((EntryPointer, Int) -> Void)?
    /// Runs before `entries(at:)` returns.
    var onEntries: ((HostPhysicalAddress) -> Void)?
    /// Runs after `liveEntryCount(of:)` has read the count it will return.
    var onLiveEntryCount: ((HostPhysicalAddress, Int) -> Void)?

    init(_ arena: TableArena) { self.arena = arena }

    var pageSize: Int { arena.pageSize }
    func allocatePage() throws(SLATError) -> HostPhysicalAddress { try arena.allocatePage() }
    func allocateContiguousPages(_ count: Int) throws(SLATError) -> HostPhysicalAddress {
        try arena.allocateContiguousPages(count)
    }
    func freePage(_ page: HostPhysicalAddress) { arena.freePage(page) }
    func entries(at page: HostPhysicalAddress) -> EntryPointer {
        onEntries?(page)
        return arena.entries(at: page)
    }
    func page(containing entry: EntryPointer) -> HostPhysicalAddress { arena.page(containing: entry) }
    func liveEntryCount(of page: HostPhysicalAddress) -> Int {
        let count = arena.liveEntryCount(of: page)
        onLiveEntryCount?(page, count)
        return count
    }
    @discardableResult
    func adjustLiveEntryCount(containing entry: EntryPointer, by delta: Int) -> Int {
        let count = arena.adjustLiveEntryCount(containing: entry, by: delta)
        afterAdjust?(entry, delta)
        return count
    }
    func setLiveEntryCount(of page: HostPhysicalAddress, to count: Int) { arena.setLiveEntryCount(of: page, to: count) }
    var freePageCount: Int { arena.freePageCount }
    var allocatedPageCount: Int { arena.allocatedPageCount }
    var totalAllocations: Int { arena.totalAllocations }
    var totalFrees: Int { arena.totalFrees }
}

// MARK: - Structural checks

/// Every table page reachable from the root with its level (height), root
/// pages first: a visitor written against the public walker API.
struct TablePageLister<Format: PageTableFormat>: PageTableVisitor {
    let format: Format
    var pages: [(page: HostPhysicalAddress, level: Int)] = []
    var visits: WalkVisits { .tablePre }
    mutating func visit(_ entry: inout VisitedEntry, kind: VisitKind) throws(SLATError) -> VisitOutcome {
        pages.append((format.childTable(of: entry.snapshot), entry.level - 1))
        return .proceed
    }
}

func tablePagesWithLevels<F: PageTableFormat, M: TableMemory>(
    _ table: PageTable<F, M>
) -> [(page: HostPhysicalAddress, level: Int)] {
    var lister = TablePageLister(format: table.format)
    let whole = GuestPhysicalRange(start: GuestPhysicalAddress(0), size: table.format.inputAddressSpaceSize)
    _ = try? table.walker.walk(whole, with: &lister)
    return table.format.rootPages(table.root).map { ($0, table.format.rootLevel) } + lister.pages
}

/// Problems with the bookkeeping of the tables: a table page whose recorded
/// live-entry count differs from its present entries, an entry left frozen
/// after every operation has returned, a non-root table
/// without any present entry (when `allowEmptyTables` is false), a table
/// page reachable twice, or a reachable page the memory does not hold.
func tableInvariantViolations<F: PageTableFormat>(
    _ table: PageTable<F, HookedMemory>, allowEmptyTables: Bool = false
) -> [String] {
    tableInvariantViolations(try! PageTable(   // one reader slot is in range
                             format: table.format, memory: table.memory.arena, root: table.root, readerSlots: 1),
                             allowEmptyTables: allowEmptyTables)
}

func tableInvariantViolations<F: PageTableFormat>(
    _ table: PageTable<F, TableArena>, allowEmptyTables: Bool = false
) -> [String] {
    let format = table.format
    var problems: [String] = []
    var seen = Set<HostPhysicalAddress>()
    let perRootPage = min(format.entriesPerTable, format.rootEntryCount)
    for (page, level) in tablePagesWithLevels(table) {
        if !seen.insert(page).inserted { problems.append("table page \(page) reachable twice") }
        if !table.memory.isAllocated(page) { problems.append("reachable table page \(page) is not allocated") }
        let entries = table.memory.entries(at: page)
        let count = level == format.rootLevel ? perRootPage : format.entriesPerTable
        var present = 0
        var frozen = 0
        for index in 0..<count {
            let entry = entries[index].load(ordering: .relaxed)
            if format.isPresent(entry, atLevel: level) { present += 1 }
            if entry == format.frozenEntry { frozen += 1 }
        }
        if frozen != 0 { problems.append("table page \(page) (level \(level)) still holds \(frozen) frozen entries") }
        let recorded = table.memory.liveEntryCount(of: page)
        if recorded != present {
            problems.append("table page \(page) (level \(level)) records \(recorded) live entries but has \(present)")
        }
        if present == 0 && level != format.rootLevel && !allowEmptyTables {
            problems.append("empty table page \(page) (level \(level)) is still linked")
        }
    }
    return problems
}

// MARK: - Threads

/// A box that lets non-`Sendable` per-thread state cross into a thread.
// @unchecked Sendable: each thread touches only its own element, and the
// main thread reads them only after the threads have been joined.
final class UncheckedBox<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// A one-shot start barrier: every thread waits until all have arrived, so
/// their work overlaps.
final class StartBarrier: Sendable {
    private let arrived = Atomic<Int>(0)
    private let parties: Int
    init(parties: Int) { self.parties = parties }
    func wait() {
        arrived.wrappingAdd(1, ordering: .acquiringAndReleasing)
        while arrived.load(ordering: .acquiring) < parties { sched_yield() }
    }
}

/// Runs `body(i)` for `i` in `0..<count` on `count` new threads that start
/// together, and returns when all have finished. Threads still running
/// after `limit` seconds mean a livelock (typically an entry left frozen
/// that shared walkers wait on forever): the process stops with that
/// message rather than hanging the test run.
func runConcurrently(_ count: Int, limit: Int = 300, _ body: @escaping @Sendable (Int) -> Void) {
    let barrier = StartBarrier(parties: count)
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            barrier.wait()
            body(index)
            group.leave()
        }
        thread.stackSize = 4 << 20
        thread.start()
    }
    if group.wait(timeout: .now() + .seconds(limit)) == .timedOut {
        fatalError("\(count) threads still running after \(limit) s: livelock (an entry left frozen?)")
    }
}

// MARK: - A table to poke at

/// One table over a ``TableArena`` with a context and a ``RecordingTLB``,
/// and one-line operations that settle their batch in exclusive mode.
final class TableFixture<Format: PageTableFormat> {
    let format: Format
    let arena: TableArena
    let table: PageTable<Format, TableArena>
    let context = PageTableContext(readerSlot: 0)
    let tlb = RecordingTLB()

    init(_ format: Format, pages: Int = 256, readerSlots: Int = 4) throws {
        self.format = format
        arena = try makeArena(for: format, pages: pages)
        table = try PageTable(format: format, memory: arena, readerSlots: readerSlots)
    }

    /// Bytes of the smallest block (height-1 leaf).
    var block: UInt64 { format.entrySize(atLevel: 1) }
    var page: UInt64 { format.pageSize }

    func map(_ start: UInt64, size: UInt64, to output: UInt64, permissions: Permissions = .readWrite,
             maximumLevel: Int? = nil) throws {
        var batch = TLBFlushBatch()
        try table.map(GuestPhysicalRange(start, size: size), to: HostPhysicalAddress(output),
                      attributes: LeafAttributes(permissions: permissions), maximumLevel: maximumLevel,
                      context: context, batch: &batch, tlb: tlb)
        table.settle(batch, tlb: tlb, mode: .exclusive)
    }

    func unmap(_ start: UInt64, size: UInt64) throws {
        var batch = TLBFlushBatch()
        try table.unmap(GuestPhysicalRange(start, size: size), context: context, batch: &batch, tlb: tlb)
        table.settle(batch, tlb: tlb, mode: .exclusive)
    }

    func changePermissions(_ start: UInt64, size: UInt64, grant: Permissions = [], revoke: Permissions = []) throws {
        var batch = TLBFlushBatch()
        try table.changePermissions(GuestPhysicalRange(start, size: size), grant: grant, revoke: revoke,
                                    context: context, batch: &batch, tlb: tlb)
        table.settle(batch, tlb: tlb, mode: .exclusive)
    }

    func translation(_ address: UInt64) -> Translation? { table.translate(GuestPhysicalAddress(address)).translation }

    /// (level, guest address) of every leaf, in order.
    var shape: [String] {
        table.leaves().map { "\($0.level)@0x\(String($0.guestAddress.rawValue, radix: 16))" }
    }
}
