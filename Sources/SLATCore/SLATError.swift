/// Every error SLAT throws. Each case names the problem and the values that
/// caused it; an operation that throws has left the tables unchanged.
public enum SLATError: Error, Hashable, Sendable {
    // Addresses and ranges
    /// A guest address is not a multiple of the alignment the operation needs.
    case misalignedGuestAddress(GuestPhysicalAddress, alignment: UInt64)
    /// An output (host-physical) address is not a multiple of the alignment needed.
    case misalignedOutputAddress(HostPhysicalAddress, alignment: UInt64)
    /// A size is not a multiple of the alignment the operation needs.
    case misalignedSize(UInt64, alignment: UInt64)
    /// A range of zero bytes was given where at least one page is needed.
    case emptyRange
    /// A range whose end (`end`) is below its start (`start`).
    case rangeEndBelowStart(start: UInt64, end: UInt64)
    /// A guest range reaches past the end of the input address space.
    case guestRangeOutOfBounds(GuestPhysicalRange, limit: UInt64)
    /// An output address does not fit the format's output address size.
    case outputAddressTooWide(HostPhysicalAddress, outputBits: Int)

    // Format configuration
    /// A level that cannot hold a leaf (or does not exist) was asked to.
    case unsupportedLevel(Int)
    /// A translation granule (bytes) the format does not implement.
    case unsupportedGranule(Int)
    /// An input (guest) address size in bits the granule cannot translate.
    case unsupportedInputAddressSize(bits: Int)
    /// An output address size in bits the format cannot encode.
    case unsupportedOutputAddressSize(bits: Int)
    /// A walk length (EPT levels) the format does not implement.
    case unsupportedLevelCount(Int)
    /// A start level (the architecture's numbering) that cannot translate an
    /// input address size of `inputBits` with this granule, or that needs a
    /// feature the configuration lacks.
    case unsupportedStartLevel(Int, inputBits: Int)
    /// A memory type this format cannot encode.
    case unsupportedMemoryType(MemoryType)
    /// A permission combination this format cannot encode (e.g. EPT write without read).
    case unsupportedPermissions(Permissions)
    /// A dirty flag was asked of a format that has none.
    case unsupportedDirtyFlag
    /// Software bits wider than the format's software field.
    case softwareBitsOutOfRange(UInt16, width: Int)
    /// Software bits of which `reserved` belong to the MMU managing the
    /// tables (on stage 2, bit 3: the MMU-writable bit of dirty logging).
    case softwareBitReservedByMMU(UInt16, reserved: UInt16)
    /// A VMID wider than the configured VMID size.
    case vmidOutOfRange(UInt32, bits: Int)
    /// The stage-2 format's memory-attribute encoding (`HCR_EL2.FWB`) and
    /// the cache hooks' `forcesWriteBack` disagree.
    case writeBackForcingMismatch(format: Bool, caches: Bool)

    // Table memory
    /// Table memory cannot supply the pages an operation needs.
    case outOfTableMemory(needed: Int, available: Int)
    /// A table memory region that is empty, misaligned or not page-sized.
    case invalidTableRegion
    /// A run of contiguous table pages whose count is not a positive power
    /// of two (`TableMemory/allocateContiguousPages(_:)`).
    case unsupportedPageRun(Int)
    /// A reader slot index outside the reclaimer's slot count.
    case readerSlotOutOfRange(Int, slots: Int)
    /// A reader slot count (an MMU's, lock's or reclaimer's) outside
    /// `1...ReaderSlotWords.maximumSlotCount`.
    case unsupportedReaderSlotCount(Int)
    /// An address-space index outside the MMU's address-space count.
    case addressSpaceOutOfRange(Int, count: Int)
    /// An MMU configuration with an address-space count the backend does not
    /// support (`supported` is the largest it does).
    case unsupportedAddressSpaceCount(Int, supported: Int)
    /// A guest-physical address at or beyond the format's input address
    /// size (`limit`, one past the highest address the tables translate).
    case guestAddressOutOfRange(GuestPhysicalAddress, limit: UInt64)
    /// The VM's tables were torn down; nothing can use them any more.
    case tornDown

    // Guest memory model
    /// A memslot overlaps the guest range of an existing one.
    case overlappingMemslot(slot: UInt32, existing: UInt32)
    /// A memslot with zero pages, a host address that is not page-aligned,
    /// or guest frames beyond any guest-physical address space (2^52 bytes).
    case invalidMemslot(slot: UInt32)
    /// A memslot id that is already in use.
    case duplicateMemslot(slot: UInt32)
    /// No memslot with this id.
    case unknownMemslot(slot: UInt32)
    /// No memslot covers this guest frame (the VMM treats it as MMIO).
    case noMemslot(GuestFrameNumber)
    /// The host has no page mapped at this virtual address.
    case hostAddressNotMapped(HostVirtualAddress)
    /// A write to a frame of a read-only memslot (the VMM emulates it, as
    /// KVM exits to user space for MMIO).
    case readOnlyMemslot(slot: UInt32, frame: GuestFrameNumber)
    /// A write to a page the host maps read-only.
    case hostPageReadOnly(HostVirtualAddress)
    /// An instruction fetch from a frame of a device or non-cacheable
    /// memslot, which is never mapped executable (KVM fails the fault with
    /// `-ENOEXEC`).
    case executeFromDeviceMemory(GuestFrameNumber)
    /// A host mapping that overlaps an existing one, or is misaligned for its page size.
    case invalidHostMapping(HostVirtualAddress)
    /// A dirty-log request for a memslot that does not log dirty pages.
    case dirtyLoggingNotEnabled(slot: UInt32)
    /// `getAndClearDirtyLog` on a memslot whose log the VMM clears itself
    /// (`DirtyLogProtection/manual(initiallySet:)`): read it with
    /// `getDirtyLog` and re-protect with `clearDirtyLog`.
    case dirtyLogClearedManually(slot: UInt32)
    /// `getDirtyLog` or `clearDirtyLog` on a memslot whose log is cleared at
    /// the harvest (`DirtyLogProtection/onHarvest`).
    case dirtyLogNotClearedManually(slot: UInt32)
    /// A dirty-log clear that does not start on a 64-page boundary of its
    /// memslot, or reaches past the memslot's last page (`slotPages`).
    case dirtyLogClearOutOfRange(slot: UInt32, firstPage: UInt64, pageCount: UInt64, slotPages: UInt64)

    // Pfn cache
    /// A pfn cache was used (refreshed or accessed) while not activated.
    case pfnCacheInactive
    /// A pfn cache length that is not positive or runs past the end of the
    /// 4 KiB page holding the cached address (`offset` is the address's
    /// offset in it).
    case pfnCacheLengthOutOfPage(offset: UInt64, length: Int)
}
