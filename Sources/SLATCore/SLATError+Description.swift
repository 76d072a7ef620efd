/// One sentence per error, with values printed as what they are: guest and
/// host addresses as `gpa`/`hpa`/`hva` hexadecimal, frames as `gfn` with
/// their guest address, sizes in hexadecimal with their unit.
extension SLATError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .misalignedGuestAddress(let address, let alignment):
            "guest address gpa \(address) is not aligned to \(Self.size(alignment))"
        case .misalignedOutputAddress(let address, let alignment):
            "output address hpa \(address) is not aligned to \(Self.size(alignment))"
        case .misalignedSize(let size, let alignment):
            "size \(Self.size(size)) is not a multiple of \(Self.size(alignment))"
        case .emptyRange:
            "the range is empty (size zero)"
        case .rangeEndBelowStart(let start, let end):
            "a range from \(Self.hex(start)) to \(Self.hex(end)) ends below its start"
        case .guestRangeOutOfBounds(let range, let limit):
            "guest range \(range) reaches past the input address space, which ends at gpa \(Self.hex(limit))"
        case .outputAddressTooWide(let address, let bits):
            "output address hpa \(address) does not fit in \(bits) physical address bits"
        case .unsupportedLevel(let level):
            "level \(level) (height) cannot hold a leaf in this format"
        case .unsupportedGranule(let bytes):
            "a granule of \(Self.size(UInt64(truncatingIfNeeded: bytes))) is not supported here"
        case .unsupportedInputAddressSize(let bits):
            "an input address size of \(bits) bits is not supported"
        case .unsupportedOutputAddressSize(let bits):
            "an output address size of \(bits) bits is not supported"
        case .unsupportedLevelCount(let count):
            "\(count)-level walks are not supported"
        case .unsupportedStartLevel(let level, let bits):
            "start level \(level) cannot translate a \(bits)-bit input address space"
        case .unsupportedMemoryType(let type):
            "memory type \(type) cannot be encoded in this format"
        case .unsupportedPermissions(let permissions):
            "permissions \(permissions) cannot be encoded in this format"
        case .unsupportedDirtyFlag:
            "this format has no dirty flag"
        case .softwareBitsOutOfRange(let bits, let width):
            "software bits \(Self.hex(UInt64(bits))) do not fit in \(width) bits"
        case .softwareBitReservedByMMU(let bits, let reserved):
            "software bits \(Self.hex(UInt64(bits))) use \(Self.hex(UInt64(reserved))), which the MMU reserves for itself"
        case .vmidOutOfRange(let vmid, let bits):
            "VMID \(vmid) does not fit in \(bits) bits"
        case .writeBackForcingMismatch(let format, let caches):
            "the format \(format ? "uses" : "does not use") the HCR_EL2.FWB encodings but the cache hooks \(caches ? "force" : "do not force") write-back"
        case .outOfTableMemory(let needed, let available):
            "out of table memory: \(needed) pages needed, \(available) available"
        case .invalidTableRegion:
            "the table memory region is empty, misaligned or not a whole number of pages"
        case .unsupportedPageRun(let count):
            "a run of \(count) contiguous table pages: a positive power of two is needed"
        case .readerSlotOutOfRange(let slot, let slots):
            "reader slot \(slot) is outside 0..<\(slots)"
        case .unsupportedReaderSlotCount(let count):
            "\(count) reader slots: between 1 and \(ReaderSlotWords.maximumSlotCount) are supported"
        case .addressSpaceOutOfRange(let space, let count):
            "address space \(space) is outside 0..<\(count)"
        case .unsupportedAddressSpaceCount(let count, let supported):
            "\(count) address spaces are not supported (at most \(supported))"
        case .guestAddressOutOfRange(let address, let limit):
            "guest address gpa \(address) is beyond the input address space, which ends at gpa \(Self.hex(limit))"
        case .tornDown:
            "the VM's tables were torn down"
        case .overlappingMemslot(let slot, let existing):
            "memslot \(slot) overlaps memslot \(existing)"
        case .invalidMemslot(let slot):
            "memslot \(slot) is empty, has a host address that is not 4 KiB aligned, or reaches past 2^52 bytes of guest memory"
        case .duplicateMemslot(let slot):
            "memslot \(slot) exists already"
        case .unknownMemslot(let slot):
            "there is no memslot \(slot)"
        case .noMemslot(let frame):
            "no memslot holds \(Self.frame(frame)) (emulate the access as MMIO)"
        case .hostAddressNotMapped(let address):
            "the host has no page mapped at hva \(address)"
        case .readOnlyMemslot(let slot, let frame):
            "memslot \(slot) is read-only: a write to \(Self.frame(frame)) is emulated"
        case .hostPageReadOnly(let address):
            "the host maps hva \(address) read-only"
        case .executeFromDeviceMemory(let frame):
            "an instruction fetch from device or non-cacheable memory at \(Self.frame(frame))"
        case .invalidHostMapping(let address):
            "the host mapping at hva \(address) overlaps another or is misaligned for its size"
        case .dirtyLoggingNotEnabled(let slot):
            "memslot \(slot) does not log dirty pages"
        case .dirtyLogClearedManually(let slot):
            "memslot \(slot) logs with manual protection: read its log with getDirtyLog and clear it with clearDirtyLog"
        case .dirtyLogNotClearedManually(let slot):
            "memslot \(slot) logs without manual protection: its log is cleared by getAndClearDirtyLog"
        case .dirtyLogClearOutOfRange(let slot, let first, let count, let slotPages):
            "a dirty-log clear of \(count) pages from page \(first) of memslot \(slot) "
                + "does not start on a multiple of 64 or runs past its \(slotPages) pages"
        case .pfnCacheInactive:
            "the pfn cache is not active"
        case .pfnCacheLengthOutOfPage(let offset, let length):
            "a pfn cache access of \(length) bytes at offset \(Self.hex(offset)) does not fit in its 4 KiB page"
        }
    }

    /// `0x…` hexadecimal.
    static func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

    /// `gfn 0x… (gpa 0x…)`: a frame number, never mistaken for an address.
    static func frame(_ frame: GuestFrameNumber) -> String {
        "gfn \(hex(frame.rawValue)) (gpa \(hex(frame.rawValue << frameShift)))"
    }

    /// A byte count in hexadecimal with its unit: `0x200000 bytes (2 MiB)`,
    /// or `0x1234 bytes` when it is not a whole number of KiB.
    static func size(_ bytes: UInt64) -> String {
        let units: [(shift: UInt64, name: String)] = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")]
        for unit in units where bytes >= 1 << unit.shift && bytes & (1 << unit.shift - 1) == 0 {
            return "\(hex(bytes)) bytes (\(bytes >> unit.shift) \(unit.name))"
        }
        return "\(hex(bytes)) bytes"
    }
}
