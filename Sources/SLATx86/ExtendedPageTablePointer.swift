import SLATCore

/// The extended-page-table pointer (EPTP, VMCS field 0x201A) that tells the
/// processor where a guest's EPT root is and how to walk it.
///
/// | bits | field |
/// |---|---|
/// | 2:0 | memory type for accessing the tables: 0 = UC, 6 = WB (others reserved) |
/// | 5:3 | page-walk length − 1: 3 for 4 levels, 4 for 5 levels |
/// | 6 | enable accessed and dirty flags |
/// | 51:12 | physical address of the root table (PML4 or PML5) |
///
/// Bit 7 (supervisor shadow-stack access rights) is left clear.
@frozen
public struct ExtendedPageTablePointer: Hashable, Sendable {
    /// The 64-bit EPTP value.
    public var rawValue: UInt64

    /// Views a raw EPTP value.
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The EPTP for tables in `format` whose root table is at `root`.
    ///
    /// - Parameters:
    ///   - format: gives the walk length and whether accessed/dirty flags are enabled.
    ///   - root: the root table's host-physical address, 4 KiB aligned.
    ///   - memoryType: how the processor accesses the tables: write-back (the
    ///     default) or uncached.
    /// - Throws: `SLATError/unsupportedMemoryType(_:)` for a memory type
    ///   other than WB or UC, `SLATError/misalignedOutputAddress(_:alignment:)`
    ///   for a root not 4 KiB aligned, `SLATError/outputAddressTooWide(_:outputBits:)`
    ///   for a root beyond the format's output address size.
    @inlinable
    public init(
        format: ExtendedPageTableFormat,
        root: HostPhysicalAddress,
        memoryType: MemoryType = .writeBack
    ) throws(SLATError) {
        let typeField: UInt64
        switch memoryType {
        case .writeBack: typeField = 6
        case .uncached: typeField = 0
        default: throw .unsupportedMemoryType(memoryType)
        }
        guard root.isAligned(to: 4096) else { throw .misalignedOutputAddress(root, alignment: 4096) }
        guard root.rawValue < format.outputAddressLimit else {
            throw .outputAddressTooWide(root, outputBits: format.outputAddressBits)
        }
        rawValue = typeField
            | UInt64(format.levelCount - 1) << 3
            | (format.accessedDirtyEnabled ? 1 << 6 : 0)
            | root.rawValue
    }

    /// Bits 2:0 decoded: 0 is `MemoryType/uncached`, 6 `MemoryType/writeBack`,
    /// anything else (reserved in an EPTP) `MemoryType/reserved(_:)`.
    @inlinable public var memoryType: MemoryType {
        switch UInt8(truncatingIfNeeded: rawValue & 0b111) {
        case 0: .uncached
        case 6: .writeBack
        case let other: .reserved(other)
        }
    }

    /// Bits 5:3 plus one: the number of levels in a walk.
    @inlinable public var levelCount: Int { Int(truncatingIfNeeded: rawValue >> 3 & 0b111) + 1 }

    /// Bit 6: whether hardware sets accessed and dirty flags in EPT entries.
    @inlinable public var accessedDirtyEnabled: Bool { rawValue & 1 << 6 != 0 }

    /// Bits 51:12: the root table's physical address.
    @inlinable public var rootAddress: HostPhysicalAddress { HostPhysicalAddress(rawValue & ExtendedPageTableBits.address) }
}
