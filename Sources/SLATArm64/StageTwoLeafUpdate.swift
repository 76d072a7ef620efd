import SLATCore
import Synchronization

/// A change made to live leaves in place, without break-before-make (the
/// architecture allows the access flag and permissions to change in place).
///
/// A value type; it takes no lock.
@frozen
public enum StageTwoLeafUpdate: Hashable, Sendable {
    /// Set the access flag (KVM's `mkyoung`).
    case setAccessFlag
    /// Clear the access flag (aging).
    case clearAccessFlag
    /// Add permissions (never removes any).
    case grant(Permissions)

    /// `entry` with the update applied.
    @inlinable
    func apply(to entry: UInt64, format: StageTwoFormat) -> UInt64 {
        switch self {
        case .setAccessFlag: entry | StageTwoDescriptorBits.accessFlag
        case .clearAccessFlag: entry & ~StageTwoDescriptorBits.accessFlag
        case .grant(let permissions): format.changingPermissions(ofLeaf: entry, grant: permissions, revoke: [])
        }
    }
}

/// What an in-place leaf update found and did.
///
/// A value type; it takes no lock.
@frozen
public struct StageTwoLeafUpdateResult: Sendable {
    /// Live leaves the walk met.
    public var leavesSeen: Int
    /// Leaves whose value the update changed.
    public var leavesChanged: Int
    /// Whether some leaf had its access flag set before the update.
    public var sawAccessFlag: Bool
    /// Whether a locked entry (owned by another thread's break-before-make
    /// or merge) was met; the caller retries (the guest access faults again).
    public var metLockedEntry: Bool
    /// The last leaf met: its first guest address, level and value after
    /// the update. `nil` when none.
    public var lastLeaf: (address: GuestPhysicalAddress, level: Int, entry: UInt64)?

    @inlinable
    init() {
        leavesSeen = 0
        leavesChanged = 0
        sawAccessFlag = false
        metLockedEntry = false
        lastLeaf = nil
    }
}

/// The walk visitor of the in-place leaf updates (KVM's stage-2 attribute
/// walker): every live leaf in the range is exchanged for its updated value;
/// a failed exchange re-reads and decides again; a locked entry is reported
/// and skipped.
///
/// With `caches` set, a leaf that the update makes executable has its
/// output invalidated from the instruction cache before the exchange that
/// makes the right visible, computed from the very value exchanged (a
/// separate lookup could see another output after a concurrent remap).
@usableFromInline
struct StageTwoLeafUpdateVisitor<Caches: CacheMaintenance>: PageTableVisitor {
    @usableFromInline let format: StageTwoFormat
    @usableFromInline let update: StageTwoLeafUpdate
    @usableFromInline let caches: Caches?
    @usableFromInline var result = StageTwoLeafUpdateResult()

    @inlinable
    init(format: StageTwoFormat, update: StageTwoLeafUpdate, caches: Caches?) {
        self.format = format
        self.update = update
        self.caches = caches
    }

    @inlinable var visits: WalkVisits { .leaf }

    @inlinable
    mutating func visit(_ entry: inout VisitedEntry, kind: VisitKind) throws(SLATError) -> VisitOutcome {
        let level = entry.level
        var old = entry.snapshot
        while true {
            if old == format.frozenEntry {
                result.metLockedEntry = true
                return .skipChildren
            }
            guard format.isLeaf(old, atLevel: level) else { return .proceed }
            let new = update.apply(to: old, format: format)
            if new == old {
                record(old, new, at: entry.address, level: level)
                return .skipChildren
            }
            if let caches, format.permissions(ofLeaf: old).intersection(.execute).isEmpty,
               !format.permissions(ofLeaf: new).intersection(.execute).isEmpty {
                caches.invalidateInstructionCache(
                    format.outputAddress(ofLeaf: old, atLevel: level), size: format.entrySize(atLevel: level))
            }
            // Always exchanged: with hardware access-flag updates the leaf
            // is volatile even to an exclusive writer (rule 5).
            _explorationTableEntry()
            let (exchanged, original) = entry.pointer.pointee.compareExchange(
                expected: old, desired: new, ordering: .acquiringAndReleasing)
            if exchanged {
                record(old, new, at: entry.address, level: level)
                result.leavesChanged += 1
                return .skipChildren
            }
            old = original
        }
    }

    @inlinable
    mutating func record(_ old: UInt64, _ new: UInt64, at address: GuestPhysicalAddress, level: Int) {
        result.leavesSeen += 1
        if old & StageTwoDescriptorBits.accessFlag != 0 { result.sawAccessFlag = true }
        result.lastLeaf = (address, level, new)
    }
}

extension StageTwoPageTable {
    /// Applies `update` to every live leaf overlapping `range` in place.
    ///
    /// - Throws: range and reader-slot errors.
    @inlinable
    public func updateLeaves(
        _ range: GuestPhysicalRange, _ update: StageTwoLeafUpdate, mode: WalkMode = .exclusive, context: PageTableContext
    ) throws(SLATError) -> StageTwoLeafUpdateResult {
        try checkLive()
        return try leafUpdate(range, update, mode: mode, context: context, caches: nil)
    }

    /// ``updateLeaves(_:_:mode:context:)``, invalidating the instruction
    /// cache for a leaf made executable when `caches` is given.
    @inlinable
    func leafUpdate(
        _ range: GuestPhysicalRange, _ update: StageTwoLeafUpdate, mode: WalkMode, context: PageTableContext,
        caches: Caches?
    ) throws(SLATError) -> StageTwoLeafUpdateResult {
        try table.validate(range)
        try validateReaderSlot(of: context)
        if case .grant(let permissions) = update { try format.validate(LeafAttributes(permissions: permissions)) }
        var visitor = StageTwoLeafUpdateVisitor(format: format, update: update, caches: caches)
        let slot = context.readerSlot
        if mode == .shared { table.reclaimer.enterReadSection(slot: slot) }
        defer { if mode == .shared { table.reclaimer.leaveReadSection(slot: slot) } }
        _ = try table.walker.walk(range, mode: mode, with: &visitor)
        return visitor.result
    }

    /// Sets the access flag of the leaf mapping `address` (an access-flag
    /// fault). Adding access needs no invalidation.
    ///
    /// - Returns: the update's result: no leaf seen when nothing maps the
    ///   address; ``StageTwoLeafUpdateResult/metLockedEntry`` when another
    ///   thread owns the entry (retry).
    /// - Throws: range and reader-slot errors.
    @inlinable @discardableResult
    public func makeYoung(_ address: GuestPhysicalAddress, mode: WalkMode = .exclusive, context: PageTableContext) throws(SLATError) -> StageTwoLeafUpdateResult {
        try checkLive()
        return try updateLeaves(pageRange(containing: address), .setAccessFlag, mode: mode, context: context)
    }

    /// Clears the access flag of every leaf overlapping `range` and returns
    /// whether any had it set (page aging). No invalidation is issued: a
    /// translation still cached keeps the page young a little longer, which
    /// aging tolerates (as KVM does).
    ///
    /// - Throws: range and reader-slot errors.
    @inlinable
    public func testAndClearYoung(_ range: GuestPhysicalRange, mode: WalkMode = .exclusive, context: PageTableContext) throws(SLATError) -> Bool {
        try checkLive()
        return try updateLeaves(range, .clearAccessFlag, mode: mode, context: context).sawAccessFlag
    }

    /// Adds `grant` to the permissions of the leaf mapping `address` (a
    /// permission fault on a page that may be given more), never removing
    /// any. The faulting translation may be cached in the faulting CPU with
    /// fewer rights (Arm may keep an entry that causes a permission fault),
    /// so the address is invalidated at the leaf's level whenever a leaf
    /// maps it — also when another thread already granted the rights and
    /// nothing changed (KVM commit be097997a273). An execute right newly
    /// granted first invalidates the instruction cache for the output of
    /// the leaf being changed, unless it is coherent.
    ///
    /// - Returns: the update's result (see ``makeYoung(_:mode:context:)``).
    /// - Throws: reader-slot errors (before anything is read), range errors,
    ///   `SLATError/unsupportedPermissions(_:)`.
    @inlinable @discardableResult
    public func relaxPermissions(
        _ address: GuestPhysicalAddress, grant: Permissions, mode: WalkMode = .exclusive, context: PageTableContext
    ) throws(SLATError) -> StageTwoLeafUpdateResult {
        try checkLive()
        try validateReaderSlot(of: context)
        let range = pageRange(containing: address)
        let instructionCaches = !grant.intersection(.execute).isEmpty && !caches.instructionCacheIsCoherent ? caches : nil
        let result = try leafUpdate(range, .grant(grant), mode: mode, context: context, caches: instructionCaches)
        if let leaf = result.lastLeaf {
            tlb.invalidate(address: leaf.address, level: format.leafLevel(ofHeight: leaf.level))
        }
        return result
    }

    /// The page-sized range holding `address`.
    @inlinable
    func pageRange(containing address: GuestPhysicalAddress) -> GuestPhysicalRange {
        GuestPhysicalRange(start: address.alignedDown(to: format.pageSize), size: format.pageSize)
    }
}
