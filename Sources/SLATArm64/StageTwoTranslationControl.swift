import SLATCore

/// The `VTCR_EL2` value (virtualization translation control) that makes the
/// processor walk tables of a ``StageTwoFormat``.
///
/// | bits | field | value written |
/// |---|---|---|
/// | 5:0 | T0SZ | 64 − IPA bits |
/// | 7:6 | SL0 | start level: 4 KiB `2 − level` (0 for level −1), 16/64 KiB `3 − level` |
/// | 9:8 | IRGN0 | 1: inner write-back read/write-allocate table walks |
/// | 11:10 | ORGN0 | 1: outer write-back read/write-allocate table walks |
/// | 13:12 | SH0 | 3: inner shareable table walks |
/// | 15:14 | TG0 | 0b00 4 KiB, 0b10 16 KiB, 0b01 64 KiB |
/// | 18:16 | PS | 32→0, 36→1, 40→2, 42→3, 44→4, 48→5, 52→6 |
/// | 19 | VS | 1 for 16-bit VMIDs |
/// | 21 | HA | hardware access flag updates |
/// | 22 | HD | hardware dirty state (DBM) updates |
/// | 31 | RES1 | 1 |
/// | 32 | DS | 1 with FEAT_LPA2 descriptors (``StageTwoFormat/lpa2``) |
/// | 33 | SL2 | 1 for start level −1 (4 KiB granule with FEAT_LPA2) |
@frozen
public struct StageTwoTranslationControl: Hashable, Sendable {
    /// The 64-bit `VTCR_EL2` value.
    public var rawValue: UInt64

    /// Views a raw `VTCR_EL2` value.
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The `VTCR_EL2` value for `format`.
    ///
    /// - Parameters:
    ///   - format: gives T0SZ, SL0, SL2, TG0, PS, HA and DS.
    ///   - vmidSize: the VMID width (VS).
    ///   - hardwareDirtyState: whether to set HD, letting hardware make a
    ///     writable-clean (DBM) leaf writable on a write. It has effect only
    ///     together with the format's `hardwareAccessFlag` (HA).
    @inlinable
    public init(format: StageTwoFormat, vmidSize: VMIDSize = .bits16, hardwareDirtyState: Bool = false) {
        let startLevelBase = format.granule == .size4KiB ? 2 : 3
        // Level −1 is SL2 = 1 with SL0 = 0.
        let sl0 = format.startLevel == -1 ? 0 : startLevelBase - format.startLevel
        rawValue = UInt64(64 - format.inputAddressBits)
            | UInt64(sl0) << 6
            | 1 << 8
            | 1 << 10
            | 3 << 12
            | format.granule.translationControlEncoding << 14
            | StageTwoTranslationControl.physicalAddressSizeField(bits: format.outputAddressBits) << 16
            | (vmidSize == .bits16 ? 1 << 19 : 0)
            | (format.hardwareAccessFlag ? 1 << 21 : 0)
            | (hardwareDirtyState ? 1 << 22 : 0)
            | 1 << 31
            | (format.lpa2 ? 1 << 32 : 0)
            | (format.startLevel == -1 ? 1 << 33 : 0)
    }

    /// The PS (and ID_AA64MMFR0_EL1.PARange) encoding of a PA size.
    @inlinable
    static func physicalAddressSizeField(bits: Int) -> UInt64 {
        switch bits {
        case 32: 0
        case 36: 1
        case 40: 2
        case 42: 3
        case 44: 4
        case 48: 5
        default: 6
        }
    }

    /// Bits 5:0, T0SZ.
    @inlinable public var t0sz: Int { Int(truncatingIfNeeded: rawValue & 0x3F) }
    /// The IPA size in bits, 64 − T0SZ.
    @inlinable public var inputAddressBits: Int { 64 - t0sz }
    /// Bits 7:6, SL0 (its meaning depends on TG0).
    @inlinable public var sl0: Int { Int(truncatingIfNeeded: rawValue >> 6 & 0b11) }
    /// Bits 15:14, TG0 decoded, or `nil` for the reserved value 0b11.
    @inlinable public var granule: TranslationGranule? {
        switch rawValue >> 14 & 0b11 {
        case 0b00: .size4KiB
        case 0b10: .size16KiB
        case 0b01: .size64KiB
        default: nil
        }
    }
    /// The Arm ARM start level SL0 and SL2 select for the granule (4 KiB:
    /// 2 − SL0, or −1 with DS and SL2 set; 16 and 64 KiB: 3 − SL0), or `nil`
    /// when TG0 is reserved.
    @inlinable public var startLevel: Int? {
        guard let granule else { return nil }
        if granule == .size4KiB && largePhysicalAddresses && startLevelExtension { return -1 }
        return (granule == .size4KiB ? 2 : 3) - sl0
    }
    /// Bit 32, DS: FEAT_LPA2 descriptors (4 and 16 KiB granules).
    @inlinable public var largePhysicalAddresses: Bool { rawValue & 1 << 32 != 0 }
    /// Bit 33, SL2: with DS and the 4 KiB granule, start level −1 (SL0 = 0).
    @inlinable public var startLevelExtension: Bool { rawValue & 1 << 33 != 0 }
    /// Bits 9:8, IRGN0.
    @inlinable public var innerCacheability: Int { Int(truncatingIfNeeded: rawValue >> 8 & 0b11) }
    /// Bits 11:10, ORGN0.
    @inlinable public var outerCacheability: Int { Int(truncatingIfNeeded: rawValue >> 10 & 0b11) }
    /// Bits 13:12, SH0.
    @inlinable public var shareability: Int { Int(truncatingIfNeeded: rawValue >> 12 & 0b11) }
    /// Bits 18:16, PS decoded to bits, or `nil` for a reserved encoding.
    @inlinable public var outputAddressBits: Int? {
        switch rawValue >> 16 & 0b111 {
        case 0: 32
        case 1: 36
        case 2: 40
        case 3: 42
        case 4: 44
        case 5: 48
        case 6: 52
        default: nil
        }
    }
    /// Bit 19, VS: the VMID width.
    @inlinable public var vmidSize: VMIDSize { rawValue & 1 << 19 != 0 ? .bits16 : .bits8 }
    /// Bit 21, HA: hardware access flag updates.
    @inlinable public var hardwareAccessFlag: Bool { rawValue & 1 << 21 != 0 }
    /// Bit 22, HD: hardware dirty state updates.
    @inlinable public var hardwareDirtyState: Bool { rawValue & 1 << 22 != 0 }
}
