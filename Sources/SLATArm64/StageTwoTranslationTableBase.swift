import SLATCore

/// The `VTTBR_EL2` value (virtualization translation table base) that points
/// the processor at a guest's stage-2 root and tags it with a VMID.
///
/// | bits | field |
/// |---|---|
/// | 0 | CnP: the tables are common to all PEs that share a TLB |
/// | 47:1 | BADDR: the root's physical address (bits 5:1 zero here, see below) |
/// | 5:2 | BADDR[51:48] with the 64 KiB granule and a 52-bit PA (FEAT_LPA), or with FEAT_LPA2 (`VTCR_EL2.DS` = 1) |
/// | 55:48 or 63:48 | VMID (8- or 16-bit) |
///
/// The architecture needs the root aligned to the size of the concatenated
/// start-level tables; SLAT places every root at the start of its table
/// pages, so it requires `rootTableCount × granule` alignment.
@frozen
public struct StageTwoTranslationTableBase: Hashable, Sendable {
    /// The 64-bit `VTTBR_EL2` value.
    public var rawValue: UInt64

    /// Views a raw `VTTBR_EL2` value.
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The `VTTBR_EL2` value for a root at `root` in `format`, tagged `vmid`.
    ///
    /// - Parameters:
    ///   - format: gives the root's alignment and the address layout.
    ///   - root: the start-level tables' host-physical address.
    ///   - vmid: the guest's VMID.
    ///   - vmidSize: the VMID width the `VTCR_EL2` value configures.
    ///   - commonNotPrivate: the CnP bit.
    /// - Throws: `SLATError/misalignedOutputAddress(_:alignment:)` for a root
    ///   not aligned to `rootTableCount × granule` bytes,
    ///   `SLATError/outputAddressTooWide(_:outputBits:)` for a root beyond
    ///   the PA size, `SLATError/vmidOutOfRange(_:bits:)` for a VMID wider
    ///   than `vmidSize`.
    @inlinable
    public init(
        format: StageTwoFormat,
        root: HostPhysicalAddress,
        vmid: UInt32,
        vmidSize: VMIDSize = .bits16,
        commonNotPrivate: Bool = false
    ) throws(SLATError) {
        let alignment = UInt64(format.rootTableCount * format.tablePageSize)
        guard root.isAligned(to: alignment) else { throw .misalignedOutputAddress(root, alignment: alignment) }
        guard root.rawValue < format.outputAddressLimit else {
            throw .outputAddressTooWide(root, outputBits: format.outputAddressBits)
        }
        guard vmid <= vmidSize.maximum else { throw .vmidOutOfRange(vmid, bits: vmidSize.bitCount) }
        rawValue = root.rawValue & 0x0000_FFFF_FFFF_FFFE
            | root.rawValue >> 46 & 0b11_1100
            | UInt64(vmid) << 48
            | (commonNotPrivate ? 1 : 0)
    }

    /// Bits 63:48: the VMID (bits 63:56 are zero with 8-bit VMIDs).
    @inlinable public var vmid: UInt32 { UInt32(truncatingIfNeeded: rawValue >> 48) }

    /// Bit 0: CnP.
    @inlinable public var commonNotPrivate: Bool { rawValue & 1 != 0 }

    /// The root address as `format` lays it out: BADDR bits 47:1 and, with
    /// the 64 KiB granule and a 52-bit PA or with FEAT_LPA2, bits 51:48 from
    /// bits 5:2 (which are then not part of the low address).
    @inlinable
    public func rootAddress(in format: StageTwoFormat) -> HostPhysicalAddress {
        if format.lpa2 || format.granule == .size64KiB && format.outputAddressBits == 52 {
            return HostPhysicalAddress(rawValue & 0x0000_FFFF_FFFF_FFC0 | (rawValue & 0b11_1100) << 46)
        }
        return HostPhysicalAddress(rawValue & 0x0000_FFFF_FFFF_FFFE)
    }
}
