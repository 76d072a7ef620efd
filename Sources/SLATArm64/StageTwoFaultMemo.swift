import SLATCore
import Synchronization

/// One vCPU's memo of the memslot and host mapping run its last stage-2
/// fault resolved through (KVM keeps the last used memslot per vCPU for the
/// same reason): a fault in the same run skips
/// `SLATCore/GuestMemory/resolve(frame:write:)`'s two locked lookups.
///
/// Soundness: an entry is used only while both the invalidation sequence
/// and the memslot generation are the ones read before the lookups that
/// filled it. Every change that can make it wrong moves one of them: a host
/// unmap, remap or write-protect ends an invalidation (sequence); a memslot
/// added, removed, or given other flags — dirty logging switched on or off,
/// made read-only, another memory type — bumps the generation, and the
/// fault compares the generation again under the MMU lock, as it does
/// after a full resolve. One still in progress is caught under the lock by
/// the tracker's range check, as for a full resolve. The only change that
/// moves neither, a host page made writable, widens what is allowed: the
/// memo then errs towards less, and a write it would refuse goes through
/// the full resolve.
///
/// Not thread-safe: entry `i` belongs to the thread using reader slot `i`.
@frozen @usableFromInline
struct StageTwoResolveMemo {
    @usableFromInline var isValid = false
    /// The invalidation sequence and memslot generation it was filled under.
    @usableFromInline var sequence: UInt64 = 0
    @usableFromInline var generation: UInt64 = 0
    @usableFromInline var memslot = Memslot(id: 0, baseFrame: GuestFrameNumber(0), pageCount: 0,
                                            hostAddress: HostVirtualAddress(0))
    /// The host run: `[runStart, runEnd)` maps host frames from `runFrame`.
    @usableFromInline var runStart: UInt64 = 0
    @usableFromInline var runEnd: UInt64 = 0
    @usableFromInline var runFrame: UInt64 = 0
    @usableFromInline var runSize = HostMappingSize.size4K
    @usableFromInline var runWritable = false
    /// The vCPU's last smallest-page table (height 0) a fault walked into
    /// (host-physical address, 0 for none), the input address bits above it
    /// (`address >> shift(atLevel: 1)`), and the tables' reclaimer
    /// `tableUnlinks` when it was remembered. A smallest-page fault in the
    /// same region starts there while no table was unlinked since:
    /// sequential faults skip the upper levels. Sound as the EPT fault's
    /// leaf-table memo: the count is read inside the read section, every
    /// unlink bumps it before its page can be retired or freed, and a
    /// shared unlink racing the fault locks every entry of the page, so the
    /// fault's exchange there fails and the general path walks from the root.
    /// While the count has not moved the parent table is not freed either,
    /// so its entry (`leafParent`) may be read.
    @usableFromInline var leafTable: UInt64 = 0
    @usableFromInline var leafRegion: UInt64 = 0
    @usableFromInline var leafUnlinks: UInt64 = 0
    /// The table entry that linked it: the memo is used only while that
    /// entry still links it (not locked by a shared unmap or merge freeing
    /// the table), so a fault never works on a page table that is, for the
    /// moment, out of the hardware's reach — it walks from the root and
    /// meets the locked entry as a walk from the root would.
    @usableFromInline var leafParent: EntryPointer?

    /// Remembers `table`, linked by `parent`, as the smallest-page table of
    /// `region`, walked while the reclaimer's `tableUnlinks` was `unlinks`.
    @inlinable @inline(__always)
    mutating func rememberLeafTable(_ table: HostPhysicalAddress, parent: EntryPointer, region: UInt64, unlinks: UInt64) {
        leafTable = table.rawValue
        leafParent = parent
        leafRegion = region
        leafUnlinks = unlinks
    }
    /// The dirty bitmap the vCPU's last logged write marked: its memslot,
    /// first frame, frame count and words, the tables' dirty-log
    /// `generation` loaded before the lookup that filled it (the words are
    /// kept alive by the slot's strong reference in
    /// ``StageTwoFaultMemos/dirtyLogOwner(slot:)``, so this struct stays
    /// trivial). Used while the generation has
    /// not moved: every start and stop of a log bumps it. A memo stale
    /// towards a stopped log marks a bitmap being dropped — a write racing
    /// the disable, owed to no log — as the lookup it replaces could.
    @usableFromInline var dirtyLogGeneration: UInt64 = 0
    @usableFromInline var dirtyLogMemslot: UInt32 = 0
    @usableFromInline var dirtyLogFirstFrame: UInt64 = 0
    @usableFromInline var dirtyLogFrameCount: UInt64 = 0
    @usableFromInline var dirtyLogWords: UnsafeMutablePointer<Atomic<UInt64>>?

    @inlinable init() {}
}

/// The per-reader-slot fault memos of one VM's stage-2 tables, each in its
/// own pair of cache lines so vCPUs never share one.
///
/// Sendable safety argument (`@unchecked` for the raw storage): entry `i`
/// is only read and written by the thread that owns reader slot `i` (the
/// `SLATCore/PageTableContext` contract), so no entry is ever accessed by
/// two threads at once; the pointer itself is immutable.
@usableFromInline
final class StageTwoFaultMemos: @unchecked Sendable {
    @usableFromInline let storage: UnsafeMutableRawPointer
    @usableFromInline let slotCount: Int
    /// Per slot, the bitmap whose words the slot's memo points to.
    @usableFromInline let dirtyLogOwners: UnsafeMutablePointer<DirtyBitmap?>

    /// Bytes between two slots' entries.
    @inlinable static var stride: Int { max(128, (MemoryLayout<StageTwoResolveMemo>.stride + 127) & ~127) }

    init(slotCount: Int) {
        self.slotCount = slotCount
        storage = UnsafeMutableRawPointer.allocate(byteCount: max(1, slotCount) * Self.stride, alignment: 128)
        for slot in 0..<slotCount {
            (storage + slot * Self.stride).initializeMemory(as: StageTwoResolveMemo.self, repeating: StageTwoResolveMemo(), count: 1)
        }
        dirtyLogOwners = UnsafeMutablePointer<DirtyBitmap?>.allocate(capacity: max(1, slotCount))
        dirtyLogOwners.initialize(repeating: nil, count: max(1, slotCount))
    }

    deinit {
        dirtyLogOwners.deinitialize(count: max(1, slotCount))
        dirtyLogOwners.deallocate()
        storage.deallocate()
    }

    /// `slot`'s strong reference to the bitmap its memo marks.
    @inlinable
    func dirtyLogOwner(slot: Int) -> UnsafeMutablePointer<DirtyBitmap?> { dirtyLogOwners + slot }

    /// `slot`'s entry; the caller has checked `slot` against the reclaimer's
    /// slot count, which is this object's.
    @inlinable @inline(__always)
    func entry(slot: Int) -> UnsafeMutablePointer<StageTwoResolveMemo> {
        (storage + slot &* Self.stride).assumingMemoryBound(to: StageTwoResolveMemo.self)
    }
}

extension StageTwoFaultHandler {
    /// The resolution of `frame` for the thread of reader slot `slot` from
    /// its memo while that is valid (``StageTwoResolveMemo``) and allows
    /// the access, else `nil` (``resolveRefillingMemo(frame:write:slot:generation:)``
    /// then). `generation` is the memslot generation the fault read before
    /// resolving.
    @inlinable @inline(__always)
    func memoizedResolution(frame: GuestFrameNumber, write: Bool, slot: Int, generation: UInt64) -> ResolvedGuestPage? {
        let sequence = guestMemory.invalidations.snapshot()
        let entry = pageTable.faultMemos.entry(slot: slot)
        guard entry.pointee.isValid && entry.pointee.sequence == sequence.value && entry.pointee.generation == generation
        else { return nil }
        let memslot = entry.pointee.memslot
        let offset = frame.rawValue &- memslot.baseFrame.rawValue
        let address = memslot.hostAddress.rawValue &+ offset &<< frameShift
        let writable = entry.pointee.runWritable && !memslot.flags.contains(.readOnly)
        guard offset < memslot.pageCount && address >= entry.pointee.runStart && address < entry.pointee.runEnd
            && (writable || !write) else { return nil }
        let size = entry.pointee.runSize
        return ResolvedGuestPage(
            frame: frame, memslot: memslot, hostAddress: HostVirtualAddress(address),
            hostFrame: HostFrameNumber(entry.pointee.runFrame &+ (address &- entry.pointee.runStart) &>> frameShift),
            hostMappingSize: size,
            // A 4 KiB run (the usual host page) allows nothing larger.
            maximumMappingSize: size == .size4K
                ? .size4K : GuestMemory.maximumMappingSize(frame: frame, slot: memslot, hostSize: size),
            writable: writable, dirtyLogging: memslot.flags.contains(.dirtyLogging), sequence: sequence)
    }

    /// The resolution of `frame` by ``guestMemory``, which then refills the
    /// memo of reader slot `slot`; `generation` is the memslot generation
    /// the fault read before resolving. Same errors as
    /// `SLATCore/GuestMemory/resolve(frame:write:)`.
    @inlinable
    func resolveRefillingMemo(frame: GuestFrameNumber, write: Bool, slot: Int, generation: UInt64) throws(SLATError) -> ResolvedGuestPage {
        let page = try guestMemory.resolve(frame: frame, write: write)
        refillResolveMemo(pageTable.faultMemos.entry(slot: slot), with: page, generation: generation)
        return page
    }

    /// Marks `frame` of memslot `memslot` in its dirty bitmap, through the
    /// memo of reader slot `slot` while the tables' dirty logs have not
    /// changed, else after a lookup that refills it. Nothing when the
    /// memslot logs nothing (logging was switched off meanwhile). Call it
    /// with the MMU lock held, after the change that gave write access.
    @inlinable @inline(never)
    func markDirty(_ frame: GuestFrameNumber, memslot: UInt32, slot: Int) {
        let entry = pageTable.faultMemos.entry(slot: slot)
        let generation = pageTable.dirtyLogs.generation.load(ordering: .acquiring)
        if entry.pointee.dirtyLogGeneration == generation && entry.pointee.dirtyLogMemslot == memslot,
           let words = entry.pointee.dirtyLogWords {
            let offset = frame.rawValue &- entry.pointee.dirtyLogFirstFrame
            if offset < entry.pointee.dirtyLogFrameCount {
                let bit: UInt64 = 1 &<< (offset & 63)
                let word = words + Int(truncatingIfNeeded: offset >> 6)
                if word.pointee.load(ordering: .relaxed) & bit == 0 { word.pointee.bitwiseOr(bit, ordering: .relaxed) }
                return
            }
        }
        refillDirtyLogMemo(entry, slot: slot, memslot: memslot, generation: generation)?.mark(frame)
    }

    /// Looks memslot `memslot`'s bitmap up and remembers it in `entry`
    /// with `generation` (loaded before the lookup); returns it.
    @usableFromInline
    func refillDirtyLogMemo(
        _ entry: UnsafeMutablePointer<StageTwoResolveMemo>, slot: Int, memslot: UInt32, generation: UInt64
    ) -> DirtyBitmap? {
        let bitmap = pageTable.dirtyLogs.bitmap(forMemslot: memslot)
        pageTable.faultMemos.dirtyLogOwner(slot: slot).pointee = bitmap
        entry.pointee.dirtyLogWords = bitmap?.words
        entry.pointee.dirtyLogFirstFrame = bitmap?.frames.start.rawValue ?? 0
        entry.pointee.dirtyLogFrameCount = bitmap?.frames.count ?? 0
        entry.pointee.dirtyLogMemslot = memslot
        entry.pointee.dirtyLogGeneration = generation
        return bitmap
    }

    /// Remembers the memslot and the host run behind `page` if the run read
    /// now agrees with `page` (a disagreement means an invalidation that
    /// moves the sequence anyway); else leaves the memo empty.
    @usableFromInline
    func refillResolveMemo(_ entry: UnsafeMutablePointer<StageTwoResolveMemo>, with page: ResolvedGuestPage, generation: UInt64) {
        entry.pointee.isValid = false
        let address = page.hostAddress
        guard let run = guestMemory.hostPages.run(containing: address),
              run.frame(of: address) == page.hostFrame, run.size == page.hostMappingSize,
              page.memslot.flags.contains(.readOnly) || run.writable == page.writable else { return }
        entry.pointee.memslot = page.memslot
        entry.pointee.runStart = run.start.rawValue
        entry.pointee.runEnd = run.range.end.rawValue
        entry.pointee.runFrame = run.frame.rawValue
        entry.pointee.runSize = run.size
        entry.pointee.runWritable = run.writable
        entry.pointee.sequence = page.sequence.value
        entry.pointee.generation = generation
        entry.pointee.isValid = true
    }
}
