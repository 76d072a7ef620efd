import SLAT
import SLATArm64
import SLATx86

/// A table format the benchmark can run, by its command-line name.
enum BenchFormat: String, CaseIterable, Sendable {
    /// Intel EPT with a 4-level (48-bit) walk, accessed/dirty flags off:
    /// hardware never writes entries (the exclusive-writer configuration the
    /// targets and the Rust peers assume).
    case ept4 = "ept4"
    /// Intel EPT with a 5-level (57-bit) walk, accessed/dirty flags off.
    case ept5 = "ept5"
    /// Intel EPT, 4-level, accessed/dirty flags on (KVM's default): hardware
    /// may set a writable leaf's dirty bit, so such leaves are volatile and
    /// changed by compare-and-exchange even by an exclusive writer.
    case ept4AccessedDirty = "ept4-ad"
    /// Arm stage 2, 4 KiB granule, 40-bit IPA (wider if the size needs it).
    case stageTwo4K = "s2-4k"
    /// Arm stage 2, 16 KiB granule, 40-bit IPA (wider if the size needs it).
    case stageTwo16K = "s2-16k"
    /// Arm stage 2, 64 KiB granule, 42-bit IPA (wider if the size needs it).
    case stageTwo64K = "s2-64k"

    /// Bytes in the format's smallest page.
    var pageSize: UInt64 {
        switch self {
        case .ept4, .ept5, .ept4AccessedDirty, .stageTwo4K: 4096
        case .stageTwo16K: 16384
        case .stageTwo64K: 65536
        }
    }

    /// Position in reports.
    var order: Int { BenchFormat.allCases.firstIndex(of: self) ?? 0 }

    /// Whether the format has 4 KiB pages: the formats the performance
    /// targets are set for.
    var hasSmallPages: Bool { pageSize == 4096 }

    /// Whether the format is Arm stage 2 (else Intel EPT).
    var isStageTwo: Bool {
        switch self {
        case .stageTwo4K, .stageTwo16K, .stageTwo64K: true
        case .ept4, .ept5, .ept4AccessedDirty: false
        }
    }

    /// Repeats when the command line gives none: more for the headline
    /// 4 KiB formats.
    var defaultRepeats: Int { hasSmallPages ? 5 : 3 }

    /// The IPA size stage 2 uses unless the benchmark size needs more.
    private var defaultInputAddressBits: Int {
        switch self {
        case .ept4, .ept4AccessedDirty: 48
        case .ept5: 57
        case .stageTwo4K, .stageTwo16K: 40
        case .stageTwo64K: 42
        }
    }

    /// The largest input address size the format offers here.
    private var maximumInputAddressBits: Int {
        switch self {
        case .ept4, .ept4AccessedDirty: 48
        case .ept5: 57
        // Stage 2 keeps the IPA within its 48-bit PA (a larger IPA than PA
        // is CONSTRAINED UNPREDICTABLE).
        case .stageTwo4K, .stageTwo16K, .stageTwo64K: 48
        }
    }

    /// One line for `slat-bench list`.
    var summary: String {
        switch self {
        case .ept4: "Intel EPT, 4-level walk (48-bit GPA), 4 KiB pages, A/D flags off"
        case .ept5: "Intel EPT, 5-level walk (57-bit GPA), 4 KiB pages, A/D flags off"
        case .ept4AccessedDirty: "Intel EPT, 4-level walk, A/D flags on (volatile writable-clean leaves)"
        case .stageTwo4K: "Arm stage 2, 4 KiB granule, 40-bit IPA (wider for large --size)"
        case .stageTwo16K: "Arm stage 2, 16 KiB granule, 40-bit IPA (wider for large --size)"
        case .stageTwo64K: "Arm stage 2, 64 KiB granule, 42-bit IPA (wider for large --size)"
        }
    }

    /// The input address bits needed to translate every address below `end`
    /// (at least the format's default).
    func inputAddressBits(coveringGuestEnd end: UInt64) throws(BenchFailure) -> Int {
        let needed = 64 - (end - 1).leadingZeroBitCount
        guard needed <= maximumInputAddressBits else {
            throw .usage("--size too large for \(rawValue): the mapping would end at guest address 0x\(String(end, radix: 16)), beyond its \(maximumInputAddressBits)-bit input address space")
        }
        return max(defaultInputAddressBits, needed)
    }

    /// Builds the format, wide enough for guest addresses below `end`, and
    /// runs `visitor` against its concrete type.
    func accept<Visitor: FormatVisitor>(
        _ visitor: Visitor, coveringGuestEnd end: UInt64
    ) throws(BenchFailure) -> Visitor.Output {
        let bits = try inputAddressBits(coveringGuestEnd: end)
        switch self {
        case .ept4:
            return try visitor.visit(build { () throws(SLATError) in
                try ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: false)
            })
        case .ept5:
            return try visitor.visit(build { () throws(SLATError) in
                try ExtendedPageTableFormat(levelCount: 5, accessedDirtyEnabled: false)
            })
        case .ept4AccessedDirty:
            return try visitor.visit(build { () throws(SLATError) in
                try ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: true)
            })
        case .stageTwo4K:
            return try visitor.visit(build { () throws(SLATError) in try StageTwoFormat(granule: .size4KiB, inputAddressBits: bits) })
        case .stageTwo16K:
            return try visitor.visit(build { () throws(SLATError) in try StageTwoFormat(granule: .size16KiB, inputAddressBits: bits) })
        case .stageTwo64K:
            return try visitor.visit(build { () throws(SLATError) in try StageTwoFormat(granule: .size64KiB, inputAddressBits: bits) })
        }
    }

    /// Runs a format initializer, reporting its error as this format's.
    private func build<Format>(_ make: () throws(SLATError) -> Format) throws(BenchFailure) -> Format {
        do {
            return try make()
        } catch {
            throw .library("creating format \(rawValue)", error)
        }
    }
}
