import SLATCore
import SLATx86
import SLATArm64

/// A concrete table format, with the hardware's view of raw entries that
/// the image reader, dumper and translator share.
public enum ImageFormat: Sendable {
    /// Intel EPT.
    case ept(ExtendedPageTableFormat)
    /// Arm stage 2.
    case stageTwo(StageTwoFormat)

    /// The format's geometry and encoding.
    public var geometry: any PageTableFormat {
        switch self {
        case .ept(let format): format
        case .stageTwo(let format): format
        }
    }

    /// Whether this is EPT.
    public var isEPT: Bool {
        if case .ept = self { return true }
        return false
    }

    /// The root register level number for a height: EPT `1...5`, Arm `0...3`.
    public func architecturalLevel(_ height: Int) -> Int { geometry.architecturalLevel(height) }

    // MARK: Memory type names

    /// The mapping-script name of a memory type in this format: EPT `wb wt
    /// wp wc uc`; stage 2 `wb wt nc device` and `device-ngnrne`; reserved
    /// encodings as `rsv<N>`.
    public func name(of type: MemoryType) -> String {
        switch (self, type) {
        case (_, .writeBack): "wb"
        case (_, .writeThrough): "wt"
        case (_, .writeProtected): "wp"
        case (.ept, .writeCombining): "wc"
        case (.stageTwo, .writeCombining): "nc"
        case (.ept, .uncached): "uc"
        case (.stageTwo, .uncached): "device-ngnrne"
        case (_, .device): "device"
        case (_, .reserved(let raw)): "rsv\(raw)"
        }
    }

    /// The memory type a script name gives in this format, or `nil`.
    public func memoryType(named name: Substring) -> MemoryType? {
        switch (self, name.lowercased()) {
        case (_, "wb"): .writeBack
        case (_, "wt"): .writeThrough
        case (.ept, "wp"): .writeProtected
        case (.ept, "wc"): .writeCombining
        case (.ept, "uc"): .uncached
        case (.stageTwo, "nc"): .writeCombining
        case (.stageTwo, "device"): .device
        case (.stageTwo, "device-ngnrne"): .uncached
        default: nil
        }
    }

    /// The memory type names this format accepts, for messages.
    public var memoryTypeNames: String { isEPT ? "wb, wt, wp, wc, uc" : "wb, wt, nc, device, device-ngnrne" }

    // MARK: Hardware view of entries

    /// What the hardware walker makes of `entry` at height `level`.
    public func classify(_ entry: UInt64, atLevel level: Int) -> EntryClass {
        switch self {
        case .ept(let format):
            let leafShape = level == 0 || (format.canHoldLeaf(atLevel: level) && entry & ExtendedPageTableBits.pageSize != 0)
            guard format.isPresentToHardware(entry) else {
                // SLAT writes leaves that grant nothing with the software bit 11 set.
                return leafShape && entry & ExtendedPageTableBits.mmuPresent != 0 ? .softwareOnlyLeaf : .invalid
            }
            if entry & 0b11 == ExtendedPageTableBits.write { return .malformed(.writeWithoutRead) }
            let reserved = format.reservedBits(inEntry: entry, atLevel: level)
            if reserved != 0 { return .malformed(.reservedBits(reserved)) }
            if leafShape {
                let field = UInt8(truncatingIfNeeded: entry >> 3) & 0b111
                if case .reserved = format.attributes(ofLeaf: entry, atLevel: level).memoryType {
                    return .malformed(.reservedMemoryType(field))
                }
                return .leaf(output: format.outputAddress(ofLeaf: entry, atLevel: level).rawValue)
            }
            return .table(child: format.childTable(of: entry).rawValue)
        case .stageTwo(let format):
            guard entry & StageTwoDescriptorBits.valid != 0 else { return .invalid }
            guard format.isPresent(entry, atLevel: level) else { return .malformed(.reservedDescriptorType) }
            let reserved = format.reservedBits(inEntry: entry, atLevel: level)
            if reserved != 0 { return .malformed(.reservedBits(reserved)) }
            let isTable = format.isTable(entry, atLevel: level)
            let address = isTable ? format.childTable(of: entry).rawValue
                : format.outputAddress(ofLeaf: entry, atLevel: level).rawValue
            if address >= format.outputAddressLimit {
                return .malformed(.addressBeyondOutputSize(address, bits: format.outputAddressBits))
            }
            return isTable ? .table(child: address) : .leaf(output: address)
        }
    }
}

/// The hardware walker's reading of one entry.
public enum EntryClass: Hashable, Sendable {
    /// Not present: the walk faults here.
    case invalid
    /// EPT only: a leaf that grants nothing, present to SLAT (bit 11) but
    /// not to hardware; dumps show it with permissions `---`.
    case softwareOnlyLeaf
    /// A next-level table at physical address `child`.
    case table(child: UInt64)
    /// A page or block mapping at `output`.
    case leaf(output: UInt64)
    /// An entry the hardware rejects.
    case malformed(EntryProblem)
}

/// Why an entry is malformed, or what else is wrong where it points.
public enum EntryProblem: Hashable, Sendable, CustomStringConvertible {
    /// Reserved (must-be-zero) bits are set: the mask of them.
    case reservedBits(UInt64)
    /// EPT write permission without read (misconfiguration).
    case writeWithoutRead
    /// EPT leaf memory type 2, 3 or 7 (misconfiguration).
    case reservedMemoryType(UInt8)
    /// Stage 2: valid with bit 1 clear where no block may be (level 3, or a level without blocks).
    case reservedDescriptorType
    /// Stage 2: a table or output address at or above the PA size (address size fault).
    case addressBeyondOutputSize(UInt64, bits: Int)
    /// A table entry whose next-level table is not inside the image.
    case tableOutsideImage(UInt64)
    /// A table entry pointing at a table already reached through another
    /// entry (a loop or shared subtree); it is not walked again.
    case tableAlreadyReached(UInt64)
    /// A leaf whose output range overlaps the table image itself: the guest
    /// could read or change its own tables. (A warning: hardware accepts it.)
    case outputInsideImage(UInt64)

    /// Whether hardware faults on the entry (all but the overlap warning).
    public var isFatal: Bool {
        if case .outputInsideImage = self { return false }
        return true
    }

    /// The finding in words, as `dump` prints it.
    public var description: String {
        switch self {
        case .reservedBits(let mask): "reserved bits set: \(NumberSyntax.hex(mask))"
        case .writeWithoutRead: "write without read (EPT misconfiguration)"
        case .reservedMemoryType(let field): "reserved memory type \(field) (EPT misconfiguration)"
        case .reservedDescriptorType: "reserved descriptor type (block where no block is allowed)"
        case .addressBeyondOutputSize(let address, let bits):
            "address \(NumberSyntax.hex(address)) beyond the \(bits)-bit PA size (address size fault)"
        case .tableOutsideImage(let address): "next-level table \(NumberSyntax.hex(address)) is outside the image"
        case .tableAlreadyReached(let address): "next-level table \(NumberSyntax.hex(address)) is already used by another entry"
        case .outputInsideImage(let address): "output \(NumberSyntax.hex(address)) maps the table image into the guest"
        }
    }
}
