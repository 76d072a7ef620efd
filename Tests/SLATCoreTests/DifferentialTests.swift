import Foundation
import Testing
import SLATCore

/// Thousands of random range operations applied both to a ``PageTable`` (in
/// exclusive mode, each batch settled at once) and to a plain page-by-page
/// model; the tables must always say what the model says.
@Suite struct DifferentialTests {
    @Test("Random map, unmap and permission changes agree with a page model", arguments: FormatCase.allCases)
    func randomOperationsAgreeWithAPageModel(_ formatCase: FormatCase) throws {
        try runDifferential(
            formatCase.format, window: formatCase.window, arenaPages: formatCase.arenaPages,
            seed: 0x5EED_0000 + UInt64(FormatCase.allCases.firstIndex(of: formatCase)!), operations: Int(ProcessInfo.processInfo.environment["CORE_OPS"] ?? "") ?? 2000)
    }
}

// MARK: - The model

/// What every page of the window maps to: `outputs[i]` is the output of
/// page `i` (`UInt64.max` when unmapped), `attributes[i]` its attributes
/// packed into 32 bits.
struct PageModel<Format: PageTableFormat> {
    static var unmapped: UInt64 { .max }

    let format: Format
    let window: GuestPhysicalRange
    let pageSize: UInt64
    let memoryTypes: [MemoryType]
    let encodable: [Bool]
    var outputs: [UInt64]
    var attributes: [UInt32]
    /// Software bits a revoke of write clears (packed position): stage 2's
    /// MMU-writable bit (Docs/formats.md), none on EPT.
    let softwareBitsClearedByRevokingWrite: UInt32

    init(format: Format, window: GuestPhysicalRange) {
        self.format = format
        self.window = window
        self.pageSize = format.pageSize
        self.memoryTypes = format.encodableMemoryTypes
        self.encodable = (UInt8(0)..<16).map { format.canEncode(Permissions(rawValue: $0)) }
        let count = Int(window.size / format.pageSize)
        outputs = Array(repeating: Self.unmapped, count: count)
        attributes = Array(repeating: 0, count: count)
        let all = UInt16((1 << format.softwareBitCount) - 1)
        let leaf = format.leafEntry(output: HostPhysicalAddress(0),
                                    attributes: LeafAttributes(permissions: .readWrite, softwareBits: all), atLevel: 0)
        let kept = format.attributes(ofLeaf: format.changingPermissions(ofLeaf: leaf, grant: [], revoke: .write),
                                     atLevel: 0).softwareBits
        softwareBitsClearedByRevokingWrite = UInt32(all & ~kept) << 16
    }

    func pack(_ a: LeafAttributes) -> UInt32 {
        let type = UInt32(memoryTypes.firstIndex(of: a.memoryType) ?? 15)
        return UInt32(a.permissions.rawValue) | type << 4 | (a.accessed ? 1 << 8 : 0) | (a.dirty ? 1 << 9 : 0)
            | UInt32(a.softwareBits) << 16
    }

    func indices(of range: GuestPhysicalRange) -> Range<Int> {
        let first = Int((range.start.rawValue - window.start.rawValue) / pageSize)
        return first..<(first + Int(range.size / pageSize))
    }

    func index(of address: UInt64) -> Int { Int((address - window.start.rawValue) / pageSize) }

    mutating func map(_ range: GuestPhysicalRange, to output: HostPhysicalAddress, attributes a: LeafAttributes) {
        let packed = pack(a)
        let pages = indices(of: range)
        let step = pageSize
        outputs.withUnsafeMutableBufferPointer { outputs in
            var next = output.rawValue
            for i in pages {
                outputs[i] = next
                next += step
            }
        }
        attributes.withUnsafeMutableBufferPointer { attributes in
            for i in pages { attributes[i] = packed }
        }
    }

    mutating func unmap(_ range: GuestPhysicalRange) {
        let pages = indices(of: range)
        outputs.withUnsafeMutableBufferPointer { outputs in
            for i in pages { outputs[i] = Self.unmapped }
        }
    }

    /// The error the change must throw: the permissions of the first mapped
    /// page (in address order) whose new permissions cannot be encoded.
    func permissionError(_ range: GuestPhysicalRange, grant: Permissions, revoke: Permissions) -> SLATError? {
        let g = UInt32(grant.rawValue), r = UInt32(revoke.rawValue)
        var encodableMask: UInt32 = 0
        for (raw, ok) in encodable.enumerated() where ok { encodableMask |= 1 << UInt32(raw) }
        let pages = indices(of: range)
        let first: UInt32? = outputs.withUnsafeBufferPointer { outputs in
            attributes.withUnsafeBufferPointer { attributes in
                for i in pages where outputs[i] != Self.unmapped {
                    let after = (attributes[i] & 0xF | g) & ~r
                    if encodableMask >> after & 1 == 0 { return after }
                }
                return nil
            }
        }
        return first.map { .unsupportedPermissions(Permissions(rawValue: UInt8($0))) }
    }

    mutating func changePermissions(_ range: GuestPhysicalRange, grant: Permissions, revoke: Permissions) {
        let g = UInt32(grant.rawValue), r = UInt32(revoke.rawValue)
        let pages = indices(of: range)
        let cleared = r & UInt32(Permissions.write.rawValue) != 0 ? softwareBitsClearedByRevokingWrite : 0
        outputs.withUnsafeBufferPointer { outputs in
            attributes.withUnsafeMutableBufferPointer { attributes in
                for i in pages where outputs[i] != Self.unmapped {
                    attributes[i] = (attributes[i] & ~0xF | (attributes[i] & 0xF | g) & ~r) & ~cleared
                }
            }
        }
    }

    var mappedPageCount: Int { outputs.reduce(0) { $0 + ($1 == Self.unmapped ? 0 : 1) } }

    /// Where `leaves` (all the tables' leaves, in order) disagree with the
    /// model, or `nil` when they describe exactly the mapped pages.
    func disagreement(with leaves: [LeafMapping]) -> String? {
        var covered = 0
        var previousEnd: UInt64 = 0
        for leaf in leaves {
            let start = leaf.guestAddress.rawValue
            guard start >= window.start.rawValue, leaf.end <= window.end.rawValue else {
                return "leaf \(leaf.guestAddress)+\(leaf.size) lies outside the window"
            }
            guard start >= previousEnd else { return "leaves out of order or overlapping at \(leaf.guestAddress)" }
            previousEnd = leaf.end
            guard leaf.size == format.entrySize(atLevel: leaf.level), start % leaf.size == 0 else {
                return "leaf \(leaf.guestAddress) has size \(leaf.size) at level \(leaf.level)"
            }
            let packed = pack(leaf.attributes)
            var expected = leaf.output.rawValue
            for i in indices(of: GuestPhysicalRange(start: leaf.guestAddress, size: leaf.size)) {
                if outputs[i] != expected || attributes[i] != packed {
                    let address = GuestPhysicalAddress(window.start.rawValue + UInt64(i) * pageSize)
                    let modelText = outputs[i] == Self.unmapped ? "unmapped" : "0x\(String(outputs[i], radix: 16)) \(String(attributes[i], radix: 16))"
                    return "page \(address): tables 0x\(String(expected, radix: 16)) \(String(packed, radix: 16)) (level-\(leaf.level) leaf \(leaf.guestAddress)), model \(modelText)"
                }
                expected += pageSize
            }
            covered += Int(leaf.size / pageSize)
        }
        let mapped = mappedPageCount
        return covered == mapped ? nil : "leaves cover \(covered) pages, the model maps \(mapped)"
    }
}

// MARK: - Random operations

enum RangeOperation: CustomStringConvertible {
    case map(GuestPhysicalRange, output: HostPhysicalAddress, attributes: LeafAttributes, maximumLevel: Int?)
    case unmap(GuestPhysicalRange)
    case changePermissions(GuestPhysicalRange, grant: Permissions, revoke: Permissions)

    var range: GuestPhysicalRange {
        switch self {
        case .map(let r, _, _, _), .unmap(let r), .changePermissions(let r, _, _): r
        }
    }

    var description: String {
        switch self {
        case .map(let r, let o, let a, let l):
            "map \(r) → \(o) \(a.permissions) \(a.memoryType) A\(a.accessed ? 1 : 0) D\(a.dirty ? 1 : 0) sw\(a.softwareBits) max \(l.map(String.init) ?? "nil")"
        case .unmap(let r): "unmap \(r)"
        case .changePermissions(let r, let g, let v): "change \(r) +\(g) -\(v)"
        }
    }
}

/// Random operations inside a window: ranges aligned to pages or to one of
/// the format's block sizes, sometimes ragged at either end; outputs mostly
/// congruent to the guest address modulo the largest leaf (so huge leaves
/// are possible) and sometimes only page-aligned.
struct OperationGenerator<Format: PageTableFormat> {
    let format: Format
    let window: GuestPhysicalRange
    let permissions: [Permissions]
    let memoryTypes: [MemoryType]
    let blockSizes: [UInt64]
    let largestLeaf: UInt64

    init(format: Format, window: GuestPhysicalRange) {
        self.format = format
        self.window = window
        permissions = format.encodablePermissions
        memoryTypes = format.encodableMemoryTypes
        blockSizes = format.leafLevels.dropFirst().map { format.entrySize(atLevel: $0) }
        largestLeaf = format.entrySize(atLevel: format.leafLevels.last!)
    }

    func range(_ rng: inout SplitMix64) -> GuestPhysicalRange {
        let page = format.pageSize
        let unit = rng.chance(45) || blockSizes.isEmpty ? page : rng.pick(blockSizes)
        var start = window.start.rawValue + rng.below(window.size / unit) * unit
        var size = unit * (unit == page ? 1 + rng.below(UInt64(rng.chance(70) ? 16 : 1024)) : 1 + rng.below(2))
        if rng.chance(35) {
            let shift = rng.below(UInt64(4)) * page
            if rng.chance(50) { start = max(window.start.rawValue, start - shift) } else { start += shift }
        }
        if rng.chance(35) {
            let change = rng.below(UInt64(4)) * page
            size = rng.chance(50) && size > change ? size - change : size + change
        }
        start = min(start, window.end.rawValue - page)
        size = max(page, min(size, window.end.rawValue - start))
        return GuestPhysicalRange(start: GuestPhysicalAddress(start), size: size)
    }

    func attributes(_ rng: inout SplitMix64) -> LeafAttributes {
        while true {
            let candidate = LeafAttributes(
                permissions: rng.pick(permissions), memoryType: rng.pick(memoryTypes),
                accessed: rng.chance(80), dirty: rng.chance(20),
                softwareBits: UInt16(rng.below(UInt64(1) << UInt64(format.softwareBitCount))))
            if (try? format.validate(candidate)) != nil { return candidate }
        }
    }

    mutating func next(_ rng: inout SplitMix64) -> RangeOperation {
        let range = range(&rng)
        let roll = rng.below(100)
        if roll < 45 {
            let limit: UInt64 = 1 << 40
            // Mapping a large range page by page is slow in a debug build:
            // large ranges mostly use huge leaves (splits and merges of
            // smaller ones still happen at their ends and over old mappings).
            let large = range.size / format.pageSize > 8192 && !rng.chance(3)
            let output: UInt64
            if large || rng.chance(70) {
                output = rng.below((limit - (8 << 30)) / largestLeaf) * largestLeaf
                    + range.start.rawValue % largestLeaf
            } else {
                output = rng.below((limit - (8 << 30)) / format.pageSize) * format.pageSize
            }
            var maximumLevel = rng.chance(50) ? nil : rng.below(format.rootLevel + 1)
            if large, let level = maximumLevel, level == 0 { maximumLevel = nil }
            return .map(range, output: HostPhysicalAddress(output), attributes: attributes(&rng), maximumLevel: maximumLevel)
        }
        if roll < 70 { return .unmap(range) }
        let grant = Permissions(rawValue: UInt8(rng.below(UInt64(16))))
        let revoke = rng.chance(30) ? [] : Permissions(rawValue: UInt8(rng.below(UInt64(16))))
        return .changePermissions(range, grant: rng.chance(30) ? [] : grant, revoke: revoke)
    }
}

/// The leaves a mapping of `range` to `output` must consist of: at every
/// address the largest leaf that the congruence of guest and output, the
/// range and `maximumLevel` allow.
func expectedLeafShape<F: PageTableFormat>(
    _ format: F, range: GuestPhysicalRange, output: HostPhysicalAddress, maximumLevel: Int?
) -> [(address: UInt64, level: Int)] {
    let delta = output.rawValue &- range.start.rawValue
    var best = 0
    for level in stride(from: min(maximumLevel ?? format.rootLevel, format.rootLevel), through: 1, by: -1) {
        let size = format.entrySize(atLevel: level)
        let first = (range.start.rawValue + size - 1) / size * size
        if format.canHoldLeaf(atLevel: level), delta % size == 0, first < range.end.rawValue,
           range.end.rawValue - first >= size {
            best = level
            break
        }
    }
    var shape: [(UInt64, Int)] = []
    var address = range.start.rawValue
    while address < range.end.rawValue {
        var level = best
        while level > 0 {
            let size = format.entrySize(atLevel: level)
            if format.canHoldLeaf(atLevel: level), address % size == 0, address + size <= range.end.rawValue { break }
            level -= 1
        }
        shape.append((address, level))
        address += format.entrySize(atLevel: level)
    }
    return shape
}

/// Collects at most `limit` leaves overlapping a range (then stops).
struct CappedLeafCollector<Format: PageTableFormat>: PageTableVisitor {
    let format: Format
    let limit: Int
    var leaves: [LeafMapping] = []
    var overflowed = false
    var visits: WalkVisits { .leaf }
    mutating func visit(_ entry: inout VisitedEntry, kind: VisitKind) throws(SLATError) -> VisitOutcome {
        guard format.isPresent(entry.snapshot, atLevel: entry.level) else { return .proceed }
        if leaves.count == limit {
            overflowed = true
            return .stop
        }
        leaves.append(LeafMapping(
            guestAddress: entry.address, level: entry.level, size: format.entrySize(atLevel: entry.level),
            output: format.outputAddress(ofLeaf: entry.snapshot, atLevel: entry.level),
            attributes: format.attributes(ofLeaf: entry.snapshot, atLevel: entry.level)))
        return .proceed
    }
}

// MARK: - The run

func runDifferential<F: PageTableFormat>(
    _ format: F, window: GuestPhysicalRange, arenaPages: Int, seed: UInt64, operations: Int
) throws {
    let arena = try makeArena(for: format, pages: arenaPages)
    let table = try PageTable(format: format, memory: arena)
    let context = PageTableContext()
    let tlb = RecordingTLB()
    var model = PageModel(format: format, window: window)
    var generator = OperationGenerator(format: format, window: window)
    var rng = SplitMix64(seed: seed)
    let page = format.pageSize

    func checkWholeState(after step: Int) {
        let problem = model.disagreement(with: table.leaves())
        #expect(problem == nil, "seed \(seed), after operation \(step): \(problem ?? "")")
        let violations = tableInvariantViolations(table)
        #expect(violations.isEmpty, "seed \(seed), after operation \(step): \(violations.prefix(4))")
        #expect(arena.allocatedPageCount == table.reachableTablePages().count + context.pageCache.count,
                "seed \(seed), after operation \(step): table pages leaked or freed while reachable")
    }

    for step in 0..<operations {
        let operation = generator.next(&rng)
        let range = operation.range

        // What a CPU could have cached before the operation: every leaf the
        // range touches (skipped when there are very many, to stay fast).
        var collector = CappedLeafCollector(format: format, limit: 2048)
        _ = try table.walker.walk(range, with: &collector)
        tlb.cache(collector.overflowed ? [] : collector.leaves)
        tlb.clearLog()

        var batch = TLBFlushBatch()
        switch operation {
        case .map(_, let output, let attributes, let maximumLevel):
            try table.map(range, to: output, attributes: attributes, maximumLevel: maximumLevel,
                          context: context, batch: &batch, tlb: tlb)
            model.map(range, to: output, attributes: attributes)
            let shape = expectedLeafShape(format, range: range, output: output, maximumLevel: maximumLevel)
            if shape.count <= 4096 {
                let actual = table.leaves(in: range).map { "\($0.level)@\(String($0.guestAddress.rawValue, radix: 16))" }
                let expected = shape.map { "\($0.level)@\(String($0.address, radix: 16))" }
                #expect(actual == expected, "seed \(seed), operation \(step) \(operation): not the largest leaves")
            }
        case .unmap:
            try table.unmap(range, context: context, batch: &batch, tlb: tlb)
            model.unmap(range)
        case .changePermissions(_, let grant, let revoke):
            if let expected = model.permissionError(range, grant: grant, revoke: revoke) {
                do {
                    try table.changePermissions(range, grant: grant, revoke: revoke, context: context, batch: &batch, tlb: tlb)
                    Issue.record("seed \(seed), operation \(step) \(operation): expected \(expected), nothing thrown")
                } catch {
                    #expect(error == expected, "seed \(seed), operation \(step) \(operation)")
                }
                let owesNothing = batch.isEmpty
                #expect(owesNothing, "seed \(seed), operation \(step): a rejected change owes something")
            } else {
                try table.changePermissions(range, grant: grant, revoke: revoke, context: context, batch: &batch, tlb: tlb)
                model.changePermissions(range, grant: grant, revoke: revoke)
            }
        }
        table.settle(batch, tlb: tlb, mode: .exclusive)

        // Rule 3: whatever was cached and is no longer true was invalidated.
        let stale = staleTranslations(tlb.cached, in: table)
        #expect(stale.isEmpty, "seed \(seed), operation \(step) \(operation): stale after settle: \(stale.prefix(3)); invalidations \(tlb.log.prefix(12))")

        if step % 500 == 499 { checkWholeState(after: step) }
    }
    checkWholeState(after: operations)

    // Every page of the window, through both lookups.
    var mismatches: [String] = []
    for i in 0..<model.outputs.count {
        let offset = (UInt64(i) &* 0x9E8) & (page - 1) & ~7
        let address = GuestPhysicalAddress(window.start.rawValue + UInt64(i) * page + offset)
        let result = table.translate(address)
        let fast = table.outputAddress(of: address)
        if model.outputs[i] == PageModel<F>.unmapped {
            if result.translation != nil || fast != nil { mismatches.append("\(address) should be unmapped") }
        } else if let translation = result.translation {
            let expected = HostPhysicalAddress(model.outputs[i] + offset)
            if translation.output != expected || fast != expected || model.pack(translation.attributes) != model.attributes[i] {
                mismatches.append("\(address) → \(translation.output) / \(fast.map { "\($0)" } ?? "nil"), model \(expected)")
            }
        } else {
            mismatches.append("\(address) should be mapped, walk says \(result)")
        }
        if mismatches.count > 4 { break }
    }
    #expect(mismatches.isEmpty, "seed \(seed): \(mismatches)")

    // Unmapping the window frees every table but the root.
    var batch = TLBFlushBatch()
    try table.unmap(window, context: context, batch: &batch, tlb: tlb)
    table.settle(batch, tlb: tlb, mode: .exclusive)
    #expect(table.leaves().isEmpty, "seed \(seed)")
    #expect(arena.allocatedPageCount == format.rootTableCount + context.pageCache.count, "seed \(seed)")
    #expect(table.reachableTablePages() == format.rootPages(table.root), "seed \(seed)")
    context.pageCache.release(to: arena)
    #expect(arena.allocatedPageCount == format.rootTableCount, "seed \(seed)")
}
