import SLATCore

/// The Armv8-A VMSAv8-64 stage-2 translation format, as KVM's arm64
/// `kvm_pgtable` uses it for guests at EL1/EL0.
///
/// **Geometry.** The granule gives the table size (4, 16 or 64 KiB) and
/// `granule shift − 3` index bits per level. Unless a start level is given,
/// the walk starts at the level that needs the fewest levels while
/// concatenating at most 16 tables at the start level, and never fewer than
/// 2 levels (KVM's `kvm_get_vtcr` rule). A given start level must satisfy the
/// architecture's consistency rule for `VTCR_EL2.SL0`/`SL2` and `T0SZ` (Arm
/// ARM pseudocode `AArch64.S2InconsistentSL`): level −1 exists only with the
/// 4 KiB granule and FEAT_LPA2. Heights are SLAT's level numbers;
/// ``architecturalLevel(_:)`` gives the Arm ARM's (3 − height, so level −1
/// is height 4).
///
/// **Leaves.** Pages at level 3 (height 0). Blocks (Arm ARM
/// `AArch64.BlockDescSupported`): 4 KiB granule at levels 2 (2 MiB) and 1
/// (1 GiB), and level 0 (512 GiB) with FEAT_LPA2; 16 KiB at level 2 (32 MiB),
/// and level 1 (64 GiB) with FEAT_LPA2; 64 KiB at level 2 (512 MiB), and
/// level 1 (4 TiB) with a 52-bit PA (FEAT_LPA). Stage 2 requires
/// break-before-make.
///
/// **Entries.** See `Docs/formats.md` for the layout. Leaves SLAT writes are
/// inner shareable (SH = 3 in bits 9:8) whatever their memory type (hardware
/// ignores SH for device memory), have DBM and contiguous clear, and keep
/// `LeafAttributes/softwareBits` in bits 58:55. Stage 2 has no dirty flag.
/// The frozen entry is `0x400`: an invalid descriptor with bit 10 set, KVM's
/// "locked" marker.
///
/// **52-bit addresses.** With the 64 KiB granule and a 52-bit PA
/// (FEAT_LPA), OA[51:48] sit in descriptor bits 15:12. With ``lpa2``
/// (FEAT_LPA2, `VTCR_EL2.DS` = 1, 4 and 16 KiB granules) descriptors hold
/// OA[49:granule] in place and OA[51:50] in bits 9:8, which no longer hold
/// shareability: every mapping takes it from `VTCR_EL2.SH0` (inner
/// shareable, as ``StageTwoTranslationControl`` writes it). IPAs and PAs of
/// 52 bits need ``lpa2`` with those granules.
///
/// **Memory attributes.** With ``forcesWriteBack`` (`HCR_EL2.FWB` = 1,
/// FEAT_S2FWB) leaves use the FWB MemAttr encoding (normal write-back is
/// 0b0110, forced; MemAttr[3] is RES0), otherwise the FWB = 0 one (see
/// `StageTwoMemoryAttributes`). The format must match the CPU's
/// `HCR_EL2.FWB`: the other encoding reads differently (0b1111 with FWB
/// means "stage 1's attributes").
///
/// **Not supported:** starting a 4 KiB walk at level 3 (FEAT_TTST).
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
    /// The PA size in bits (`VTCR_EL2.PS`): 32, 36, 40, 42, 44, 48, or 52
    /// (64 KiB granule, or ``lpa2``).
    public let outputAddressBits: Int
    /// Whether descriptors use the FEAT_LPA2 layout (`VTCR_EL2.DS` = 1, 4 and
    /// 16 KiB granules): OA[51:50] in bits 9:8, shareability from
    /// `VTCR_EL2.SH0`, 52-bit IPAs and PAs, level-0 (4 KiB) and level-1
    /// (16 KiB) blocks, and start level −1 (4 KiB).
    public let lpa2: Bool
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
    /// How far the high output-address bits move down into
    /// ``highAddressMask``: 42 (OA[51:50] → bits 9:8) with ``lpa2``, 36
    /// (OA[51:48] → bits 15:12) otherwise. A byte beside the flags, so the
    /// format stays 120 bytes (it is copied by value on the stage-2 paths).
    @usableFromInline let highAddressShiftField: UInt8

    /// Bit `h` set when a valid entry with bit 1 clear is a block at height `h` (h ≥ 1).
    @usableFromInline let blockLevelMask: UInt64
    /// Bit `h` set when height `h` may hold a leaf.
    @usableFromInline let leafLevelMask: UInt64
    /// Bits 47:granule shift (49:granule shift with ``lpa2``): the output
    /// address bits a descriptor holds in place (every address SLAT encodes
    /// is granule aligned).
    @usableFromInline let tableAddressMask: UInt64
    /// Where the high output-address bits sit: bits 15:12 (OA[51:48]) with
    /// the 64 KiB granule and a 52-bit PA, bits 9:8 (OA[51:50]) with
    /// ``lpa2``, else 0.
    @usableFromInline let highAddressMask: UInt64
    // The format is copied by value on the stage-2 paths: it stays at 120
    // bytes (leaf shareability is derived from the high-address mask).
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
    ///     granules (32...52 with `lpa2`), 32...52 with 64 KiB; at most
    ///     `outputAddressBits` (a larger IPA than PA is CONSTRAINED
    ///     UNPREDICTABLE).
    ///   - outputAddressBits: the PA size: 32, 36, 40, 42, 44, 48, or 52
    ///     with the 64 KiB granule (FEAT_LPA) or `lpa2`.
    ///   - hardwareAccessFlag: whether `VTCR_EL2.HA` is set.
    ///   - executeNeverSplit: whether FEAT_XNX encodings are used.
    ///   - forcesWriteBack: whether `HCR_EL2.FWB` is set (FEAT_S2FWB
    ///     MemAttr encodings).
    ///   - lpa2: whether `VTCR_EL2.DS` is set (FEAT_LPA2 descriptors; 4 and
    ///     16 KiB granules only).
    ///   - startLevel: the Arm ARM level the walk starts at, or `nil` for the
    ///     fewest levels with up to 16 concatenated tables.
    /// - Throws: `SLATError/unsupportedOutputAddressSize(bits:)`,
    ///   `SLATError/unsupportedInputAddressSize(bits:)`,
    ///   `SLATError/unsupportedGranule(_:)` for `lpa2` with the 64 KiB
    ///   granule, or `SLATError/unsupportedStartLevel(_:inputBits:)` for a
    ///   start level that cannot translate `inputAddressBits` (it would need
    ///   more than 16 concatenated tables, or none at all), level −1 without
    ///   `lpa2` and the 4 KiB granule, level 3 with 4 KiB (FEAT_TTST), level 0
    ///   with 16 KiB without `lpa2`, level 0 with 64 KiB, or a level the
    ///   Arm ARM allows only with a larger PA (4 KiB level 0 and 64 KiB level
    ///   1 below 44 bits, 16 KiB level 1 below 42).
    @inlinable
    public init(
        granule: TranslationGranule = .size4KiB,
        inputAddressBits: Int = 40,
        outputAddressBits: Int = 48,
        hardwareAccessFlag: Bool = false,
        executeNeverSplit: Bool = false,
        forcesWriteBack: Bool = false,
        lpa2: Bool = false,
        startLevel: Int? = nil
    ) throws(SLATError) {
        if lpa2 && granule == .size64KiB { throw .unsupportedGranule(granule.byteCount) }
        let wideAddresses = granule == .size64KiB || lpa2
        let outputSupported = switch outputAddressBits {
        case 32, 36, 40, 42, 44, 48: true
        case 52: wideAddresses
        default: false
        }
        guard outputSupported else { throw .unsupportedOutputAddressSize(bits: outputAddressBits) }
        let maximumInput = wideAddresses ? 52 : 48
        guard inputAddressBits >= 32, inputAddressBits <= maximumInput, inputAddressBits <= outputAddressBits else {
            throw .unsupportedInputAddressSize(bits: inputAddressBits)
        }

        let shift = granule.shift
        let bits = shift - 3
        let root: Int
        if let startLevel {
            // AArch64.S2InvalidSL and AArch64.S2InconsistentSL: the levels
            // below the start resolve `bits` each, the start level 1 to
            // `bits + 4` (up to 16 concatenated tables).
            let encodable = switch granule {
            case .size4KiB: startLevel >= 0 && startLevel <= 2 || startLevel == -1 && lpa2
            case .size16KiB: startLevel >= 1 && startLevel <= 3 || startLevel == 0 && lpa2
            case .size64KiB: startLevel >= 1 && startLevel <= 3
            }
            let needsWidePA = switch granule {
            case .size4KiB: startLevel == 0 && outputAddressBits < 44
            case .size16KiB: startLevel == 1 && outputAddressBits < 42
            case .size64KiB: startLevel == 1 && outputAddressBits < 44
            }
            let height = 3 - startLevel
            let resolvedBelow = shift + bits * height
            let consistent = inputAddressBits > resolvedBelow && inputAddressBits <= resolvedBelow + bits + 4
            guard encodable, !needsWidePA, consistent, height >= 1 else {
                throw .unsupportedStartLevel(startLevel, inputBits: inputAddressBits)
            }
            root = height
        } else {
            // The fewest levels (at least 2) whose start level resolves the
            // rest of the IPA with at most 16 concatenated tables (4 extra bits).
            var fewest = 1
            while inputAddressBits > shift + bits * (fewest + 1) + 4 { fewest += 1 }
            root = fewest
        }
        let extraBits = inputAddressBits - (shift + bits * (root + 1))

        self.granule = granule
        self.granuleShift = shift
        self.bitsPerLevel = bits
        self.rootLevel = root
        self.rootTableCount = 1 << max(0, extraBits)
        self.inputAddressBits = inputAddressBits
        self.outputAddressBits = outputAddressBits
        self.lpa2 = lpa2
        self.hardwareAccessFlag = hardwareAccessFlag
        self.executeNeverSplit = executeNeverSplit
        self.forcesWriteBack = forcesWriteBack
        self.highAddressShiftField = lpa2 ? 42 : UInt8(StageTwoDescriptorBits.addressHighShift)

        let heights: UInt64 = (1 << UInt64(root + 1)) - 1
        // AArch64.BlockDescSupported: one more block level with FEAT_LPA2
        // (4 and 16 KiB) or a 52-bit PA (64 KiB).
        let leafHeights: UInt64 = switch granule {
        case .size4KiB: lpa2 ? 0b1111 : 0b111
        case .size16KiB: lpa2 ? 0b111 : 0b011
        case .size64KiB: outputAddressBits == 52 ? 0b111 : 0b011
        }
        self.leafLevelMask = leafHeights & heights
        self.blockLevelMask = leafHeights & heights & ~1
        let inPlace: UInt64 = lpa2 ? 0x0003_FFFF_FFFF_FFFF : StageTwoDescriptorBits.addressSpan
        self.tableAddressMask = inPlace & ~(UInt64(granule.byteCount) - 1)
        self.highAddressMask = lpa2 ? StageTwoDescriptorBits.shareability
            : granule == .size64KiB && outputAddressBits == 52 ? StageTwoDescriptorBits.addressHigh : 0
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

    /// The Arm ARM level the walk starts at (−1...2).
    @inlinable public var startLevel: Int { 3 - rootLevel }

    /// How far the high output-address bits move down into their field: 42
    /// (OA[51:50] → bits 9:8) with ``lpa2``, 36 (OA[51:48] → bits 15:12)
    /// otherwise; irrelevant where ``highAddressMask`` is 0.
    @inlinable var highAddressShift: UInt64 { UInt64(highAddressShiftField) }

    /// SH = 3 (inner shareable) in bits 9:8 for leaves, unless FEAT_LPA2
    /// uses those bits for OA[51:50] (then ``highAddressMask`` covers them).
    @inlinable var leafShareability: UInt64 { StageTwoDescriptorBits.innerShareable & ~highAddressMask }
}
