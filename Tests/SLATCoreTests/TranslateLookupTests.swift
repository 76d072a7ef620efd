import Testing
import SLATArm64
import SLATCore
import SLATx86

/// The lookup (`translate(_:)`, `outputAddress(of:)`) takes one of several
/// code paths: straight-line walks for the 4 KiB granule at root levels 2
/// to 4, for larger granules at root levels 1 and 2, and a loop for every
/// other shape or a table memory without a linear map. These tests run each
/// walk shape the formats have over leaves of every size placed at the
/// bottom, the middle and the top of the input address space, and require
/// both kinds of memory to give exactly the translation that was mapped.
@Suite struct TranslateLookupTests {
    /// A walk shape: a format whose root level, root table count and granule
    /// select one of the lookup's paths.
    enum Shape: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case ept4, ept5
        case stageTwo4KiB32, stageTwo4KiB36, stageTwo4KiB40, stageTwo4KiB44, stageTwo4KiB48
        case stageTwo16KiB36, stageTwo16KiB40, stageTwo16KiB44, stageTwo16KiB48
        case stageTwo64KiB40, stageTwo64KiB46, stageTwo64KiB48, stageTwo64KiB52

        var testDescription: String { rawValue }

        var format: any PageTableFormat {
            switch self {
            case .ept4: try! ExtendedPageTableFormat(levelCount: 4)
            case .ept5: try! ExtendedPageTableFormat(levelCount: 5)
            case .stageTwo4KiB32: try! StageTwoFormat(granule: .size4KiB, inputAddressBits: 32)
            case .stageTwo4KiB36: try! StageTwoFormat(granule: .size4KiB, inputAddressBits: 36)
            case .stageTwo4KiB40: try! StageTwoFormat(granule: .size4KiB, inputAddressBits: 40)
            case .stageTwo4KiB44: try! StageTwoFormat(granule: .size4KiB, inputAddressBits: 44)
            case .stageTwo4KiB48: try! StageTwoFormat(granule: .size4KiB, inputAddressBits: 48)
            case .stageTwo16KiB36: try! StageTwoFormat(granule: .size16KiB, inputAddressBits: 36)
            case .stageTwo16KiB40: try! StageTwoFormat(granule: .size16KiB, inputAddressBits: 40)
            case .stageTwo16KiB44: try! StageTwoFormat(granule: .size16KiB, inputAddressBits: 44)
            case .stageTwo16KiB48: try! StageTwoFormat(granule: .size16KiB, inputAddressBits: 48)
            case .stageTwo64KiB40: try! StageTwoFormat(granule: .size64KiB, inputAddressBits: 40)
            case .stageTwo64KiB46: try! StageTwoFormat(granule: .size64KiB, inputAddressBits: 46)
            case .stageTwo64KiB48: try! StageTwoFormat(granule: .size64KiB, inputAddressBits: 48)
            // OA[51:48] live in descriptor bits 15:12: outputs above 2^48 test them.
            case .stageTwo64KiB52: try! StageTwoFormat(granule: .size64KiB, inputAddressBits: 52, outputAddressBits: 52)
            }
        }
    }

    @Test("Every walk shape translates each mapped leaf, unmapped and outside address exactly", arguments: Shape.allCases)
    func lookupsGiveTheMappedTranslations(_ shape: Shape) throws {
        try checkLookups(shape.format)
    }

    @Test("The shapes cover root levels 1 to 4 and concatenated roots")
    func shapesCoverEveryRootLevel() {
        let formats = Shape.allCases.map(\.format)
        #expect(Set(formats.map(\.rootLevel)) == [1, 2, 3, 4])
        #expect(formats.contains { $0.rootTableCount > 1 })
    }
}

/// One leaf a lookup test maps and probes.
private struct ProbedLeaf {
    let guest: UInt64
    let level: Int
    let size: UInt64
    let output: UInt64
}

private func checkLookups<Format: PageTableFormat>(_ format: Format) throws {
    let arena = try TableArena(pageSize: format.tablePageSize, pageCount: 64, prefault: false)
    let table = try PageTable(format: format, memory: arena, readerSlots: 1)
    // The same tables walked through a memory without a linear map: the
    // lookup's loop rather than its straight-line walks.
    let general = try PageTable(format: format, memory: HookedMemory(arena), root: table.root, readerSlots: 1)
    let context = PageTableContext()
    let tlb = RecordingTLB()
    let attributes = LeafAttributes(permissions: .readWrite)

    // Three regions of twice the largest leaf: at the bottom of the space,
    // at its middle (a boundary between concatenated root tables) and at
    // its top. In each, a leaf of every size: the largest in the second
    // half, a level-L leaf at offset size(L), the smallest at offset 0.
    let space = format.inputAddressSpaceSize
    let levels = format.leafLevels
    let largest = format.entrySize(atLevel: levels.last!)
    let regions = [0, space / 2, space - 2 * largest]
    var leaves: [ProbedLeaf] = []
    for (regionIndex, region) in regions.enumerated() {
        for level in levels {
            let size = format.entrySize(atLevel: level)
            let guest = region + (level == 0 ? 0 : size)
            let output = format.outputAddressLimit - UInt64(regionIndex + 1) * 4 * largest + (guest - region)
            leaves.append(ProbedLeaf(guest: guest, level: level, size: size, output: output))
        }
    }
    for leaf in leaves {
        var batch = TLBFlushBatch()
        try table.map(GuestPhysicalRange(leaf.guest, size: leaf.size), to: HostPhysicalAddress(leaf.output),
                      attributes: attributes, maximumLevel: leaf.level, mode: .exclusive,
                      context: context, batch: &batch, tlb: tlb)
        table.settle(batch, tlb: tlb, mode: .exclusive)
    }

    for leaf in leaves {
        for offset in [0, leaf.size / 2 + 8, leaf.size - 1] {
            let address = GuestPhysicalAddress(leaf.guest + offset)
            let expected = Translation(
                output: HostPhysicalAddress(leaf.output + offset), leafAddress: GuestPhysicalAddress(leaf.guest),
                leafOutput: HostPhysicalAddress(leaf.output), level: leaf.level, size: leaf.size,
                attributes: attributes,
                entry: format.leafEntry(output: HostPhysicalAddress(leaf.output), attributes: attributes, atLevel: leaf.level))
            #expect(table.translate(address) == .mapped(expected), "\(address)")
            #expect(general.translate(address) == .mapped(expected), "\(address) (no linear map)")
            #expect(table.outputAddress(of: address) == HostPhysicalAddress(leaf.output + offset), "\(address)")
            #expect(general.outputAddress(of: address) == HostPhysicalAddress(leaf.output + offset), "\(address) (no linear map)")
        }
    }

    // Unmapped: between the smallest leaf and the next, and a quarter of the
    // way up the space, where no table exists below the root.
    var unmapped = [space / 4]
    if levels.count > 1 { unmapped += regions.map { $0 + format.entrySize(atLevel: levels[0]) } }
    for raw in unmapped {
        let address = GuestPhysicalAddress(raw)
        guard case .notPresent(let level) = table.translate(address) else {
            Issue.record("\(address) should not be mapped: \(table.translate(address))")
            continue
        }
        #expect(general.translate(address) == .notPresent(level: level), "\(address) (no linear map)")
        #expect(table.outputAddress(of: address) == nil, "\(address)")
        #expect(general.outputAddress(of: address) == nil, "\(address) (no linear map)")
    }

    // Outside: the first address past the space and the largest one.
    for raw in [space, space + format.pageSize + 8, UInt64.max] {
        let address = GuestPhysicalAddress(raw)
        #expect(table.translate(address) == .outsideAddressSpace, "\(address)")
        #expect(general.translate(address) == .outsideAddressSpace, "\(address) (no linear map)")
        #expect(table.outputAddress(of: address) == nil, "\(address)")
        #expect(general.outputAddress(of: address) == nil, "\(address) (no linear map)")
    }
}
