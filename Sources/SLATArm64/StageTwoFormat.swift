import SLATCore

/// The Armv8-A VMSAv8-64 stage-2 translation format, as KVM's arm64
/// `kvm_pgtable` uses it for guests at EL1/EL0.
///
/// **Geometry.** The granule gives the table size (4, 16 or 64 KiB) and
/// `granule shift − 3` index bits per level. The walk starts at the level
/// that needs the fewest levels while concatenating at most 16 tables at the
/// start level, and never fewer than 2 levels (KVM's `kvm_get_vtcr` rule;
/// the architecture's `SL0`/`T0SZ` constraints hold for every configuration
/// the initializer accepts). Heights are SLAT's level numbers;
/// ``architecturalLevel(_:)`` gives the Arm ARM's (3 − height).
///
/// **Leaves.** Pages at level 3 (height 0); blocks at level 2 (2 MiB) and
/// level 1 (1 GiB) with the 4 KiB granule, at level 2 only with 16 KiB
/// (32 MiB) and 64 KiB (512 MiB). 64 KiB level-1 (4 TiB) blocks, which need a
/// 52-bit PA, are not offered. Stage 2 requires break-before-make.
///
/// **Entries.** See `Docs/formats.md` for the layout. Leaves SLAT writes are
/// inner shareable (SH = 3) whatever their memory type (hardware ignores SH
/// for device memory), have DBM and contiguous clear, and keep
/// ``LeafAttributes/softwareBits`` in bits 58:55. Stage 2 has no dirty flag.
/// The frozen entry is `0x400`: an invalid descriptor with bit 10 set, KVM's
/// "locked" marker.
///
/// **Memory attributes.** With ``forcesWriteBack`` (`HCR_EL2.FWB` = 1,
/// FEAT_S2FWB) leaves use the FWB MemAttr encoding (normal write-back is
/// 0b0110, forced; MemAttr[3] is RES0), otherwise the FWB = 0 one (see
/// `StageTwoMemoryAttributes`). The format must match the CPU's
/// `HCR_EL2.FWB`: the other encoding reads differently (0b1111 with FWB
/// means "stage 1's attributes").
///
/// **Not supported:** FEAT_LPA2 (52-bit addresses with the 4 and 16 KiB
/// granules, which move OA[51:50] into bits 9:8), and starting a 4 KiB
/// walk at level 3 (FEAT_TTST).
@frozen
public struct StageTwoFormat: Hashable, Sendable {
    /// The translation granule.
    public let granule: TranslationGranule
    /// log2 of the granule: 12, 14 or 16.
    public let granuleShift: Int
    /// Index bits one table resolves: 9, 11 or 13.
    public let bitsPerLevel: Int
    /// Height of the start level (levels in a walk − 1).
    public let rootLevel: Int
    /// Tables concatenated at the start level (1...16).
    public let rootTableCount: Int
    /// The IPA size in bits (`64 − VTCR_EL2.T0SZ`).
    public let inputAddressBits: Int
    /// The PA size in bits (`VTCR_EL2.PS`): 32, 36, 40, 42, 44, 48, or 52 with the 64 KiB granule.
    public let outputAddressBits: Int
    /// Whether hardware sets the access flag (`VTCR_EL2.HA`, FEAT_HAFDBS).
    public let hardwareAccessFlag: Bool
    /// Whether privileged and user execute-never are separate (FEAT_XNX:
    /// XN[1:0] in bits 54:53). Without it bit 54 alone decides execution at
    /// every exception level.
    public let executeNeverSplit: Bool
    /// Whether the tables are for `HCR_EL2.FWB` = 1 (FEAT_S2FWB): leaves use
    /// the FWB MemAttr encodings, and no data-cache clean is needed for a
    /// new mapping (stage 2 forces write-back).
    public var forcesWriteBack: Bool

    /// Bit `h` set when a valid entry with bit 1 clear is a block at height `h` (h ≥ 1).
    @usableFromInline let blockLevelMask: UInt64
    /// Bit `h` set when height `h` may hold a leaf.
    @usableFromInline let leafLevelMask: UInt64
    /// Bits 47:granule shift: a table descriptor's next-level address.
    @usableFromInline let tableAddressMask: UInt64
    /// Bits 15:12 when the 64 KiB granule holds OA[51:48] there (52-bit PA), else 0.
    @usableFromInline let highAddressMask: UInt64
    /// The execute-never bits a leaf uses: 54:53 with FEAT_XNX, 54 without.
    @usableFromInline let executeNeverMask: UInt64
    /// XN[1:0] → execute rights (see ``StageTwoExecuteNever``).
    @usableFromInline let executeNeverDecodeTable: UInt64
    /// Execute rights → XN[1:0] (see ``StageTwoExecuteNever``).
    @usableFromInline let executeNeverEncodeTable: UInt64

    /// A stage-2 format.
    ///
    /// - Parameters:
    ///   - granule: the translation granule (`VTCR_EL2.TG0`).
    ///   - inputAddressBits: the IPA size: 32...48 with the 4 and 16 KiB
    ///     granules, 32...52 with 64 KiB; at most `outputAddressBits` (a
    ///     larger IPA than PA is CONSTRAINED UNPREDICTABLE).
    ///   - outputAddressBits: the PA size: 32, 36, 40, 42, 44, 48, or 52 with
    ///     the 64 KiB granule (FEAT_LPA).
    ///   - hardwareAccessFlag: whether `VTCR_EL2.HA` is set.
    ///   - executeNeverSplit: whether FEAT_XNX encodings are used.
    ///   - forcesWriteBack: whether `HCR_EL2.FWB` is set (FEAT_S2FWB
    ///     MemAttr encodings).
    /// - Throws: ``SLATError/unsupportedOutputAddressSize(bits:)`` or
    ///   ``SLATError/unsupportedInputAddressSize(bits:)``.
    @inlinable
    public init(
        granule: TranslationGranule = .size4KiB,
        inputAddressBits: Int = 40,
        outputAddressBits: Int = 48,
        hardwareAccessFlag: Bool = false,
        executeNeverSplit: Bool = false,
        forcesWriteBack: Bool = false
    ) throws(SLATError) {
        let outputSupported = switch outputAddressBits {
        case 32, 36, 40, 42, 44, 48: true
        case 52: granule == .size64KiB
        default: false
        }
        guard outputSupported else { throw .unsupportedOutputAddressSize(bits: outputAddressBits) }
        let maximumInput = granule == .size64KiB ? 52 : 48
        guard inputAddressBits >= 32, inputAddressBits <= maximumInput, inputAddressBits <= outputAddressBits else {
            throw .unsupportedInputAddressSize(bits: inputAddressBits)
        }

        let shift = granule.shift
        let bits = shift - 3
        // The fewest levels (at least 2) whose start level resolves the rest
        // of the IPA with at most 16 concatenated tables (4 extra bits).
        var root = 1
        while inputAddressBits > shift + bits * (root + 1) + 4 { root += 1 }
        let extraBits = inputAddressBits - (shift + bits * (root + 1))

        self.granule = granule
        self.granuleShift = shift
        self.bitsPerLevel = bits
        self.rootLevel = root
        self.rootTableCount = 1 << max(0, extraBits)
        self.inputAddressBits = inputAddressBits
        self.outputAddressBits = outputAddressBits
        self.hardwareAccessFlag = hardwareAccessFlag
        self.executeNeverSplit = executeNeverSplit
        self.forcesWriteBack = forcesWriteBack

        let heights: UInt64 = (1 << UInt64(root + 1)) - 1
        let leafHeights: UInt64 = granule == .size4KiB ? 0b111 : 0b011
        self.leafLevelMask = leafHeights & heights
        self.blockLevelMask = leafHeights & heights & ~1
        self.tableAddressMask = StageTwoDescriptorBits.addressSpan & ~(UInt64(granule.byteCount) - 1)
        self.highAddressMask = granule == .size64KiB && outputAddressBits == 52 ? StageTwoDescriptorBits.addressHigh : 0
        self.executeNeverMask = executeNeverSplit
            ? StageTwoDescriptorBits.executeNeverField : StageTwoDescriptorBits.executeNever
        self.executeNeverDecodeTable = executeNeverSplit
            ? StageTwoExecuteNever.splitDecodeTable : StageTwoExecuteNever.plainDecodeTable
        self.executeNeverEncodeTable = executeNeverSplit
            ? StageTwoExecuteNever.splitEncodeTable : StageTwoExecuteNever.plainEncodeTable
    }

    /// This format with the memory-attribute encoding of `HCR_EL2.FWB` =
    /// `forced` (everything else unchanged).
    @inlinable
    public func forcingWriteBack(_ forced: Bool) -> StageTwoFormat {
        var format = self
        format.forcesWriteBack = forced
        return format
    }

    /// The Arm ARM level the walk starts at (0...2).
    @inlinable public var startLevel: Int { 3 - rootLevel }
}
