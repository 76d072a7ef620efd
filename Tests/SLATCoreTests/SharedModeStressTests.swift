import Testing
import SLATCore

/// Real threads (one ``PageTableContext`` and reader slot each, started
/// together) running range operations in ``WalkMode/shared`` mode over
/// overlapping ranges: the final tables must be what the operations define,
/// and every table page must be reachable, cached in a context, or freed
/// exactly once. Run them under ThreadSanitizer too:
/// `swift test --sanitize=thread --filter Stress`.
@Suite struct SharedModeStressTests {
    static let formats: [FormatCase] = [.ept4, .stageTwo4KiB40]
    static let threadCount = 4

    @Test("Mixed 2M/4K maps of the same mapping race to the tables the model expects", arguments: formats)
    func mixedLevelMapsConverge(_ formatCase: FormatCase) throws {
        try checkMixedLevelMaps(formatCase.format, base: formatCase.window.start.rawValue, seed: 0x000_5EED)
    }

    @Test("Racing maps and unmaps of owned and shared ranges end exact, and then leave only the root", arguments: formats)
    func mapsAndUnmapsLeaveOnlyTheRoot(_ formatCase: FormatCase) throws {
        try checkMapsAndUnmaps(formatCase.format, base: formatCase.window.start.rawValue, seed: 0x0AA_5EED)
    }

    @Test("Permission changes racing maps keep every output and never lose a leaf", arguments: formats)
    func permissionChangesRacingMaps(_ formatCase: FormatCase) throws {
        try checkPermissionsVersusMaps(formatCase.format, base: formatCase.window.start.rawValue, seed: 0x0BB_5EED)
    }
}

// MARK: - Plans

struct StressOperation: Sendable, CustomStringConvertible {
    enum Kind: Sendable {
        case map(maximumLevel: Int?)
        case unmap
        case grant(Permissions)
        case revoke(Permissions)
    }
    let kind: Kind
    let range: GuestPhysicalRange
    let output: UInt64
    let permissions: Permissions

    var description: String { "\(kind) \(range) → 0x\(String(output, radix: 16)) \(permissions)" }
}

/// The same output for a guest page whichever thread maps it: 2 MiB
/// congruent, so any leaf size is possible.
let stressOutputOffset: UInt64 = 0x10_0000_0000

/// A random range of `window`: page-aligned, or 2 MiB-aligned and a few
/// 2 MiB long (so 2M leaves, splits and merges race with 4K ones).
func stressRange(_ rng: inout SplitMix64, window: GuestPhysicalRange, page: UInt64) -> GuestPhysicalRange {
    let mib2: UInt64 = 0x20_0000
    let start: UInt64
    let size: UInt64
    if rng.chance(40) {
        start = window.start.rawValue + rng.below(window.size / mib2) * mib2
        size = mib2 * (1 + rng.below(UInt64(2))) + (rng.chance(30) ? page * rng.below(UInt64(4)) : 0)
    } else {
        start = window.start.rawValue + rng.below(window.size / page) * page
        size = page * (1 + rng.below(UInt64(rng.chance(80) ? 32 : 768)))
    }
    return GuestPhysicalRange(start: GuestPhysicalAddress(start), size: min(size, window.end.rawValue - start))
}

// MARK: - Running

/// Runs one plan per thread in shared mode, each operation's batch settled
/// (retired) at once. Returns the contexts and the errors the threads met.
func runStressPlans<F: PageTableFormat>(
    _ table: PageTable<F, TableArena>, plans: [[StressOperation]], contexts: [PageTableContext]
) -> [String] {
    let box = UncheckedBox(contexts)
    let errors = UncheckedBox([String](repeating: "", count: plans.count))
    let tlb = CountingTLB()
    runConcurrently(plans.count) { index in
        let context = box.value[index]
        for (step, operation) in plans[index].enumerated() {
            var batch = TLBFlushBatch()
            do throws(SLATError) {
                switch operation.kind {
                case .map(let maximumLevel):
                    try table.map(operation.range, to: HostPhysicalAddress(operation.output),
                                  attributes: LeafAttributes(permissions: operation.permissions),
                                  maximumLevel: maximumLevel, mode: .shared, context: context, batch: &batch, tlb: tlb)
                case .unmap:
                    try table.unmap(operation.range, mode: .shared, context: context, batch: &batch, tlb: tlb)
                case .grant(let permissions):
                    try table.changePermissions(operation.range, grant: permissions, mode: .shared,
                                                context: context, batch: &batch, tlb: tlb)
                case .revoke(let permissions):
                    try table.changePermissions(operation.range, revoke: permissions, mode: .shared,
                                                context: context, batch: &batch, tlb: tlb)
                }
            } catch {
                if errors.value[index].isEmpty { errors.value[index] = "thread \(index) step \(step) \(operation): \(error)" }
            }
            table.settle(batch, tlb: tlb, mode: .shared)
        }
    }
    return errors.value.filter { !$0.isEmpty }
}

/// Checks the accounting after the threads: grace periods over, every page
/// allocated is reachable or in a context's cache.
func checkStressAccounting<F: PageTableFormat>(
    _ table: PageTable<F, TableArena>, contexts: [PageTableContext], seed: UInt64, allowEmptyTables: Bool
) {
    table.reclaimer.synchronize()
    #expect(table.reclaimer.pendingCount == 0, "seed \(seed)")
    let violations = tableInvariantViolations(table, allowEmptyTables: allowEmptyTables)
    #expect(violations.isEmpty, "seed \(seed): \(violations.prefix(4))")
    let cached = contexts.reduce(0) { $0 + $1.pageCache.count }
    #expect(table.memory.allocatedPageCount == table.reachableTablePages().count + cached,
            "seed \(seed): \(table.memory.allocatedPageCount) allocated, \(table.reachableTablePages().count) reachable, \(cached) cached")
}

/// Unmaps everything exclusively and releases the caches: only the root stays.
func checkTeardown<F: PageTableFormat>(
    _ table: PageTable<F, TableArena>, window: GuestPhysicalRange, contexts: [PageTableContext], seed: UInt64
) throws {
    var batch = TLBFlushBatch()
    try table.unmap(window, context: contexts[0], batch: &batch, tlb: CountingTLB())
    table.settle(batch, tlb: CountingTLB(), mode: .exclusive)
    for context in contexts { context.pageCache.release(to: table.memory) }
    #expect(table.reachableTablePages() == table.format.rootPages(table.root), "seed \(seed)")
    #expect(table.memory.allocatedPageCount == table.format.rootTableCount, "seed \(seed)")
}

/// Pages of `window` whose translation is not `expected(page)`: `nil`
/// means unmapped; otherwise the output, and permissions the page may have.
func stressMismatches<F: PageTableFormat>(
    _ table: PageTable<F, TableArena>, window: GuestPhysicalRange,
    expected: (Int) -> (output: UInt64, permissions: Set<Permissions>)?
) -> [String] {
    var problems: [String] = []
    let page = table.format.pageSize
    for index in 0..<Int(window.size / page) {
        let address = GuestPhysicalAddress(window.start.rawValue + UInt64(index) * page)
        let found = table.translate(address).translation
        switch (expected(index), found) {
        case (nil, nil): continue
        case (nil, let found?): problems.append("\(address) should be unmapped, maps \(found.output)")
        case (let want?, nil): problems.append("\(address) should map 0x\(String(want.output, radix: 16)), is unmapped")
        case (let want?, let found?):
            var plain = found.attributes
            plain.permissions = []
            if found.output.rawValue != want.output || !want.permissions.contains(found.attributes.permissions)
                || plain != LeafAttributes(permissions: []) {
                problems.append("\(address) maps \(found.output) \(found.attributes), expected 0x\(String(want.output, radix: 16)) \(want.permissions)")
            }
        }
        if problems.count >= 4 { break }
    }
    return problems
}

// MARK: - The three stress tests

func checkMixedLevelMaps<F: PageTableFormat>(_ format: F, base: UInt64, seed: UInt64) throws {
    let window = GuestPhysicalRange(base, size: 64 << 20)
    let page = format.pageSize
    let arena = try makeArena(for: format, pages: 2048)
    let table = try PageTable(format: format, memory: arena, readerSlots: SharedModeStressTests.threadCount)
    var mapped = [Bool](repeating: false, count: Int(window.size / page))
    var plans: [[StressOperation]] = []
    for thread in 0..<SharedModeStressTests.threadCount {
        var rng = SplitMix64(seed: seed &+ UInt64(thread))
        plans.append((0..<750).map { _ in
            let range = stressRange(&rng, window: window, page: page)
            let level: Int? = rng.pick([0, 1, nil])
            for i in 0..<Int(range.size / page) { mapped[Int((range.start.rawValue - base) / page) + i] = true }
            return StressOperation(kind: .map(maximumLevel: level), range: range,
                                   output: range.start.rawValue + stressOutputOffset, permissions: .readWrite)
        })
    }
    let contexts = (0..<SharedModeStressTests.threadCount).map { PageTableContext(readerSlot: $0) }
    let errors = runStressPlans(table, plans: plans, contexts: contexts)
    #expect(errors.isEmpty, "seed \(seed): \(errors)")

    let mismatches = stressMismatches(table, window: window) { index in
        mapped[index] ? (base + UInt64(index) * page + stressOutputOffset, [.readWrite]) : nil
    }
    #expect(mismatches.isEmpty, "seed \(seed): \(mismatches)")
    checkStressAccounting(table, contexts: contexts, seed: seed, allowEmptyTables: false)
    try checkTeardown(table, window: window, contexts: contexts, seed: seed)
}

func checkMapsAndUnmaps<F: PageTableFormat>(_ format: F, base: UInt64, seed: UInt64) throws {
    let window = GuestPhysicalRange(base, size: 16 << 20)
    let page = format.pageSize
    let threads = SharedModeStressTests.threadCount
    let arena = try makeArena(for: format, pages: 2048)
    let table = try PageTable(format: format, memory: arena, readerSlots: threads)
    let contexts = (0..<threads).map { PageTableContext(readerSlot: $0) }

    // Phase 1: each thread maps and unmaps inside its own 512 KiB chunks,
    // interleaved so that every 4 KiB table is shared by all threads: the
    // end state of every page is defined by its owner's last operation.
    let chunk: UInt64 = 512 << 10
    let chunkCount = Int(window.size / chunk)
    var expected = [UInt64?](repeating: nil, count: Int(window.size / page))
    var plans: [[StressOperation]] = []
    for thread in 0..<threads {
        var rng = SplitMix64(seed: seed &+ UInt64(thread))
        plans.append((0..<750).map { _ in
            let owned = thread + threads * rng.below(chunkCount / threads)
            let first = rng.below(chunk / page)
            let count = 1 + rng.below(chunk / page - first)
            let start = base + UInt64(owned) * chunk + first * page
            let range = GuestPhysicalRange(start, size: count * page)
            let firstIndex = Int((start - base) / page)
            if rng.chance(40) {
                for i in 0..<Int(count) { expected[firstIndex + i] = nil }
                return StressOperation(kind: .unmap, range: range, output: 0, permissions: [])
            }
            let output = 0x20_0000_0000 + rng.below(UInt64(1) << 20) * page
            for i in 0..<Int(count) { expected[firstIndex + i] = output + UInt64(i) * page }
            return StressOperation(kind: .map(maximumLevel: rng.pick([0, nil])), range: range, output: output,
                                   permissions: .readWrite)
        })
    }
    var errors = runStressPlans(table, plans: plans, contexts: contexts)
    #expect(errors.isEmpty, "seed \(seed): \(errors)")
    let mismatches = stressMismatches(table, window: window) { index in expected[index].map { ($0, [.readWrite]) } }
    #expect(mismatches.isEmpty, "seed \(seed), owned phase: \(mismatches)")
    checkStressAccounting(table, contexts: contexts, seed: seed, allowEmptyTables: true)

    // Phase 2: overlapping maps (of one mapping, mixed levels) and unmaps
    // anywhere, each thread ending with an unmap of the whole window.
    plans = (0..<threads).map { thread in
        var rng = SplitMix64(seed: seed &+ 0x100 &+ UInt64(thread))
        var plan: [StressOperation] = (0..<500).map { _ in
            let range = stressRange(&rng, window: window, page: page)
            if rng.chance(40) { return StressOperation(kind: .unmap, range: range, output: 0, permissions: []) }
            return StressOperation(kind: .map(maximumLevel: rng.pick([0, 1, nil])), range: range,
                                   output: range.start.rawValue + stressOutputOffset, permissions: .readWrite)
        }
        plan.append(StressOperation(kind: .unmap, range: window, output: 0, permissions: []))
        return plan
    }
    errors = runStressPlans(table, plans: plans, contexts: contexts)
    #expect(errors.isEmpty, "seed \(seed): \(errors)")
    table.reclaimer.synchronize()
    #expect(table.leaves().isEmpty, "seed \(seed)")
    #expect(table.reachableTablePages() == format.rootPages(table.root), "seed \(seed): tables left linked")
    checkStressAccounting(table, contexts: contexts, seed: seed, allowEmptyTables: false)
    for context in contexts { context.pageCache.release(to: arena) }
    #expect(arena.allocatedPageCount == format.rootTableCount, "seed \(seed)")
}

func checkPermissionsVersusMaps<F: PageTableFormat>(_ format: F, base: UInt64, seed: UInt64) throws {
    let window = GuestPhysicalRange(base, size: 64 << 20)
    let page = format.pageSize
    let threads = SharedModeStressTests.threadCount
    let arena = try makeArena(for: format, pages: 2048)
    let table = try PageTable(format: format, memory: arena, readerSlots: threads)
    let contexts = (0..<threads).map { PageTableContext(readerSlot: $0) }
    var mapped = [Bool](repeating: false, count: Int(window.size / page))
    // Half the threads map (read-write, one mapping, mixed levels); the
    // others revoke and grant write on random ranges. Granting write needs
    // the encodability pre-check on EPT, which walks while tables change.
    let plans: [[StressOperation]] = (0..<threads).map { thread in
        var rng = SplitMix64(seed: seed &+ UInt64(thread))
        return (0..<750).map { _ in
            let range = stressRange(&rng, window: window, page: page)
            if thread % 2 == 1 {
                return StressOperation(kind: rng.chance(50) ? .revoke(.write) : .grant(.write), range: range,
                                       output: 0, permissions: [])
            }
            for i in 0..<Int(range.size / page) { mapped[Int((range.start.rawValue - base) / page) + i] = true }
            return StressOperation(kind: .map(maximumLevel: rng.pick([0, 1, nil])), range: range,
                                   output: range.start.rawValue + stressOutputOffset, permissions: .readWrite)
        }
    }
    let errors = runStressPlans(table, plans: plans, contexts: contexts)
    #expect(errors.isEmpty, "seed \(seed): \(errors)")
    let mismatches = stressMismatches(table, window: window) { index in
        mapped[index] ? (base + UInt64(index) * page + stressOutputOffset, [.read, .readWrite]) : nil
    }
    #expect(mismatches.isEmpty, "seed \(seed): \(mismatches)")
    checkStressAccounting(table, contexts: contexts, seed: seed, allowEmptyTables: false)

    // Write granted everywhere again: exactly the mapping the maps made.
    var batch = TLBFlushBatch()
    try table.changePermissions(window, grant: .write, context: contexts[0], batch: &batch, tlb: CountingTLB())
    table.settle(batch, tlb: CountingTLB(), mode: .exclusive)
    let exact = stressMismatches(table, window: window) { index in
        mapped[index] ? (base + UInt64(index) * page + stressOutputOffset, [.readWrite]) : nil
    }
    #expect(exact.isEmpty, "seed \(seed): \(exact)")
    try checkTeardown(table, window: window, contexts: contexts, seed: seed)
}
