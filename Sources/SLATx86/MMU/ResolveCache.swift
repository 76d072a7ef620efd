import SLATCore

/// One vCPU's memo of the last memslot and host mapping run its faults
/// resolved through (KVM keeps the last used memslot per vCPU for the same
/// reason): sequential faults then skip ``SLATCore/GuestMemory/resolve(frame:write:)``'s
/// two table lookups.
///
/// Soundness: an entry is used only while the invalidation sequence is
/// the one read before the lookups that filled it. Every change that can
/// make it wrong — host unmap, remap, write-protect, memslot removal or
/// made read-only, dirty logging enabled (the MMU bumps the sequence
/// around it) — ends an invalidation and so moves the sequence; one still
/// in progress is caught under the lock by the tracker's range check, as
/// for a full resolve. Changes that do not move the sequence only widen
/// what is allowed (a host page or memslot made writable, dirty logging
/// turned off), so the memo errs towards less: a write it would refuse
/// goes through the full resolve instead.
///
/// Not thread-safe: entry `i` belongs to the thread using reader slot `i`.
@usableFromInline
struct ResolveCacheEntry {
    @usableFromInline var isValid = false
    @usableFromInline var sequence: UInt64 = 0
    @usableFromInline var memslot = Memslot(id: 0, baseFrame: GuestFrameNumber(0), pageCount: 0,
                                            hostAddress: HostVirtualAddress(0))
    @usableFromInline var runStart: UInt64 = 0
    @usableFromInline var runEnd: UInt64 = 0
    @usableFromInline var runFrame: UInt64 = 0
    @usableFromInline var runSize = HostMappingSize.size4K
    @usableFromInline var runWritable = false
    /// The vCPU's last 4 KiB-leaf table (``LeafTableMemo``).
    @usableFromInline var leafTable = LeafTableMemo()
    /// The vCPU's last dirty log (``DirtyLogMemo``).
    @usableFromInline var dirtyLog = DirtyLogMemo()

    @usableFromInline init() {}
}

extension ExtendedPageTableMMU {
    /// Bytes between two vCPUs' entries: two cache lines, so vCPUs never
    /// share one.
    @inlinable static var resolveCacheStride: Int { max(128, (MemoryLayout<ResolveCacheEntry>.stride + 127) & ~127) }

    /// `slot`'s entry.
    @inlinable
    func resolveCacheEntry(slot: Int) -> UnsafeMutablePointer<ResolveCacheEntry> {
        (resolveCaches + slot &* Self.resolveCacheStride).assumingMemoryBound(to: ResolveCacheEntry.self)
    }

    /// The resolution of `frame` for the thread of reader slot `slot`: from
    /// its memo when that is still valid, else from ``guestMemory`` (which
    /// then refills the memo). Same errors as
    /// ``SLATCore/GuestMemory/resolve(frame:write:)``.
    @inlinable
    func resolve(frame: GuestFrameNumber, write: Bool, slot: Int) throws(SLATError) -> ResolvedGuestPage {
        let sequence = tracker.snapshot()
        let entry = resolveCacheEntry(slot: slot)
        if entry.pointee.isValid && entry.pointee.sequence == sequence.value {
            let memslot = entry.pointee.memslot
            let offset = frame.rawValue &- memslot.baseFrame.rawValue
            let address = memslot.hostAddress.rawValue &+ offset &<< 12
            let writable = entry.pointee.runWritable && !memslot.flags.contains(.readOnly)
            if offset < memslot.pageCount && address >= entry.pointee.runStart && address < entry.pointee.runEnd
                && (writable || !write) {
                let size = entry.pointee.runSize
                return ResolvedGuestPage(
                    frame: frame, memslot: memslot, hostAddress: HostVirtualAddress(address),
                    hostFrame: HostFrameNumber(entry.pointee.runFrame &+ (address &- entry.pointee.runStart) &>> 12),
                    hostMappingSize: size,
                    maximumMappingSize: Self.maximumMappingSize(frame: frame, memslot: memslot, hostSize: size),
                    writable: writable, dirtyLogging: memslot.flags.contains(.dirtyLogging), sequence: sequence)
            }
        }
        let page = try guestMemory.resolve(frame: frame, write: write)
        refillResolveCache(entry, with: page)
        return page
    }

    /// Remembers the memslot and the host mapping run behind `page`, if the
    /// run read now agrees with `page` (else leaves the memo empty).
    @usableFromInline
    func refillResolveCache(_ entry: UnsafeMutablePointer<ResolveCacheEntry>, with page: ResolvedGuestPage) {
        entry.pointee.isValid = false
        let address = page.hostAddress
        for run in guestMemory.hostPages.mappings where run.range.contains(address) {
            // The run may already be newer than `page` (read later): keep it
            // only if it agrees; a disagreement means an invalidation that
            // will move the sequence anyway.
            guard run.frame(of: address) == page.hostFrame, run.size == page.hostMappingSize,
                  page.memslot.flags.contains(.readOnly) || run.writable == page.writable else { return }
            entry.pointee.memslot = page.memslot
            entry.pointee.runStart = run.start.rawValue
            entry.pointee.runEnd = run.range.end.rawValue
            entry.pointee.runFrame = run.frame.rawValue
            entry.pointee.runSize = run.size
            entry.pointee.runWritable = run.writable
            entry.pointee.sequence = page.sequence.value
            entry.pointee.isValid = true
            return
        }
    }

    /// The largest size not above `hostSize` whose aligned block around
    /// `frame` lies inside `memslot` with guest and host addresses congruent
    /// modulo the size (as ``SLATCore/GuestMemory/resolve(frame:write:)`` computes it).
    @inlinable
    static func maximumMappingSize(frame: GuestFrameNumber, memslot: Memslot, hostSize: HostMappingSize) -> HostMappingSize {
        var size = hostSize
        while let smaller = size.smaller {
            let frames = size.frameCount
            let blockStart = frame.rawValue & ~(frames &- 1)
            let insideSlot = blockStart >= memslot.baseFrame.rawValue
                && blockStart &+ frames <= memslot.baseFrame.rawValue &+ memslot.pageCount
            let congruent = (memslot.hostAddress.rawValue &>> 12 &- memslot.baseFrame.rawValue) & (frames &- 1) == 0
            if insideSlot && congruent { return size }
            size = smaller
        }
        return size
    }
}
