import SLATCore
import Synchronization

/// The simulated CPU's second-level walker: translates an access through a
/// vCPU's ``SimulatedTLB`` and, on a miss, walks the real tables of any
/// `PageTableFormat` the way the hardware does.
///
/// A walk starts at the root, follows table entries, and at the leaf checks
/// encodability (misconfiguration), the access flag, the permissions, then
/// sets the accessed and (for writes) dirty flags by compare-and-exchange
/// where ``profile`` says the hardware does — never for an access that
/// faults — and fills the TLB. A failed exchange (software changed the
/// entry) restarts the walk. Permissions of table entries are not
/// consulted (SLATCore writes them with full rights).
///
/// Locking: none of its own. ``access(_:_:through:)`` holds the vCPU TLB's
/// mutex for the whole access, so a TLB invalidation returns only after
/// in-flight walks, and table pages freed after a flush (rule 3) are never
/// read. ``walk(_:for:updatingFlags:)`` without a TLB has no such
/// protection: call it where no table can be freed meanwhile.
@frozen
public struct HardwareWalker<Format: PageTableFormat, Memory: TableMemory>: Sendable {
    /// The format of the tables.
    public let format: Format
    /// Where the table pages are.
    public let memory: Memory
    /// Physical address of the root (all concatenated root tables).
    public let root: HostPhysicalAddress
    /// What the simulated CPU does with flags and corner cases.
    public let profile: HardwareProfile
    /// The accessed-flag bit of a leaf, found by encoding a leaf with and without it.
    public let accessedMask: UInt64
    /// The dirty-flag bit of a leaf (zero unless the profile sets dirty flags).
    public let dirtyMask: UInt64

    /// A walker over the tables at `root`.
    ///
    /// - Parameters:
    ///   - profile: `nil` derives it from the format
    ///     (``HardwareProfile/init(deriving:)``).
    ///   - format: the tables' format.
    ///   - memory: the table memory the walker reads.
    ///   - root: the root table's host-physical address.
    public init(format: Format, memory: Memory, root: HostPhysicalAddress, profile: HardwareProfile? = nil) {
        self.format = format
        self.memory = memory
        self.root = root
        let profile = profile ?? HardwareProfile(deriving: format)
        self.profile = profile
        let zero = HostPhysicalAddress(0)
        let plain = LeafAttributes(permissions: .readWrite, accessed: false, dirty: false)
        var accessed = plain
        accessed.accessed = true
        var dirty = plain
        dirty.dirty = true
        let base = format.leafEntry(output: zero, attributes: plain, atLevel: 0)
        self.accessedMask = format.leafEntry(output: zero, attributes: accessed, atLevel: 0) ^ base
        self.dirtyMask = profile.setsDirtyFlag ? format.leafEntry(output: zero, attributes: dirty, atLevel: 0) ^ base : 0
    }

    /// A walker over `table`'s tables.
    public init(table: PageTable<Format, Memory>, profile: HardwareProfile? = nil) {
        self.init(format: table.format, memory: table.memory, root: table.root, profile: profile)
    }

    // MARK: Access through a TLB

    /// Translates an access of `address` on the vCPU whose TLB is `tlb`.
    ///
    /// A cached entry that grants the access serves it (a write through an
    /// entry cached clean re-walks where the hardware sets dirty flags). One
    /// that does not raises a permission fault and stays cached where the
    /// profile keeps such entries (Arm); otherwise it is dropped and the
    /// tables are walked again, so the fault reflects the tables. A successful walk fills the TLB
    /// (running the conflict detector); a faulting one caches nothing.
    /// Uses of entries the detectors condemned are reported.
    @inlinable
    public func access(_ address: GuestPhysicalAddress, _ kind: AccessKind, through tlb: SimulatedTLB) -> AccessResult {
        let needed = kind.requiredPermission
        let write = kind == .write
        return tlb.state.withLock { storage -> AccessResult in
            if let (level, key, cached) = storage.hit(address.rawValue) {
                if cached.permissions.contains(needed) && (!write || cached.dirty || !profile.setsDirtyFlag) {
                    storage.statistics.hits &+= 1
                    tlb.noteUse(level: level, key: key, address: address, kind: kind, in: &storage)
                    return .translated(cached.output(of: address), tlbHit: true)
                }
                if profile.keepsEntriesFailingPermissionChecks && !cached.permissions.contains(needed) {
                    // Arm: the cached entry itself faults and stays cached.
                    storage.statistics.hits &+= 1
                    return .violation(Violation(kind: .permission, address: address, access: kind, level: level,
                                                granted: cached.permissions))
                }
                storage.remove(level: level, key: key)
            }
            storage.statistics.misses &+= 1
            switch walk(address, access: kind, updatingFlags: true) {
            case .leaf(let translation):
                tlb.fill(translation, accessing: address, kind: kind, in: &storage)
                return .translated(translation.output(of: address), tlbHit: false)
            case .violation(let violation):
                return .violation(violation)
            }
        }
    }

    // MARK: Walk

    /// Walks the tables for an `access` of `address` as the CPU would,
    /// without a TLB.
    ///
    /// - Parameters:
    ///   - updatingFlags: set accessed/dirty flags as the profile
    ///     says (pass `false` to inspect without side effects).
    ///   - address: the guest-physical address accessed.
    ///   - access: what the access is (read, write, fetch).
    @inlinable
    public func walk(_ address: GuestPhysicalAddress, for access: AccessKind, updatingFlags: Bool = true) -> HardwareWalkResult {
        walk(address, access: access, updatingFlags: updatingFlags)
    }

    /// The leaf the CPU would use for `address` regardless of the access
    /// (no permission or access-flag check, no flag update), or the fault
    /// that stops the walk before one.
    public func lookUp(_ address: GuestPhysicalAddress) -> HardwareWalkResult {
        walk(address, access: nil, updatingFlags: false)
    }

    @inlinable
    func walk(_ address: GuestPhysicalAddress, access: AccessKind?, updatingFlags: Bool) -> HardwareWalkResult {
        let kind = access ?? .read
        let raw = address.rawValue
        guard raw < format.inputAddressSpaceSize else {
            return .violation(Violation(kind: .addressSize, address: address, access: kind, level: format.rootLevel))
        }
        let entriesPerTable = format.entriesPerTable
        restart: while true {
            var level = format.rootLevel
            let rootIndex = format.index(of: address, atLevel: level)
            var page = root.advanced(by: UInt64(rootIndex / entriesPerTable) &* UInt64(format.tablePageSize))
            var index = rootIndex % entriesPerTable
            var path = TableWalkPath()
            while true {
                path.append(page)
                let pointer = memory.entries(at: page) + index
                let entry = pointer.pointee.load(ordering: .acquiring)
                if !format.isPresent(entry, atLevel: level) {
                    return .violation(Violation(kind: .notPresent, address: address, access: kind, level: level))
                }
                if level > 0 && format.isTable(entry, atLevel: level) {
                    // EPT's table entries carry R/W/X: every entry of the
                    // walk must allow the access (SDM vol. 3, "EPT Violations").
                    if let access, !format.permissions(ofTable: entry, atLevel: level).contains(access.requiredPermission) {
                        return .violation(Violation(kind: .permission, address: address, access: access, level: level,
                                                    granted: format.permissions(ofTable: entry, atLevel: level)))
                    }
                    if updatingFlags && profile.setsAccessedFlagInTables && entry & accessedMask == 0 {
                        let (exchanged, _) = pointer.pointee.compareExchange(
                            expected: entry, desired: entry | accessedMask, ordering: .acquiringAndReleasing)
                        if !exchanged { continue restart }
                    }
                    page = format.childTable(of: entry)
                    level -= 1
                    index = format.index(of: address, atLevel: level)
                    continue
                }
                // A leaf.
                guard format.canHoldLeaf(atLevel: level) else {
                    return .violation(Violation(kind: .misconfiguration, address: address, access: kind, level: level))
                }
                let attributes = format.attributes(ofLeaf: entry, atLevel: level)
                do {
                    try format.validate(attributes)
                } catch {
                    return .violation(Violation(kind: .misconfiguration, address: address, access: kind, level: level))
                }
                let permissions = attributes.permissions
                if permissions.isEmpty && profile.permissionlessLeafIsNotPresent {
                    return .violation(Violation(kind: .notPresent, address: address, access: kind, level: level))
                }
                var desired = entry
                if let access {
                    if !attributes.accessed {
                        switch profile.accessFlag {
                        case .faultWhenClear:
                            return .violation(Violation(kind: .accessFlag, address: address, access: access, level: level))
                        case .setByHardware:
                            desired |= accessedMask
                        case .ignored:
                            break
                        }
                    }
                    if !permissions.contains(access.requiredPermission) {
                        return .violation(Violation(kind: .permission, address: address, access: access, level: level,
                                                    granted: permissions))
                    }
                    if access == .write && profile.setsDirtyFlag && !attributes.dirty { desired |= dirtyMask }
                }
                if updatingFlags && desired != entry {
                    let (exchanged, _) = pointer.pointee.compareExchange(
                        expected: entry, desired: desired, ordering: .acquiringAndReleasing)
                    if !exchanged { continue restart }
                }
                let size = format.entrySize(atLevel: level)
                let dirty = attributes.dirty || (updatingFlags && desired & dirtyMask != 0)
                return .leaf(CachedTranslation(
                    guestAddress: address.alignedDown(to: size), level: level, size: size,
                    output: format.outputAddress(ofLeaf: entry, atLevel: level),
                    permissions: permissions, dirty: dirty, path: path))
            }
        }
    }

    /// Whether the tables still grant `cached`: the leaf now used for its
    /// first address is at least as large, gives the same output, grants at
    /// least its permissions, and — where hardware sets dirty flags — is
    /// still dirty if the entry was cached dirty (a write through it would
    /// otherwise not mark the page).
    public func stillGrants(_ cached: CachedTranslation) -> Bool {
        guard let now = lookUp(cached.guestAddress).translation else { return false }
        if now.size < cached.size { return false }
        if now.output(of: cached.guestAddress) != cached.output { return false }
        if !now.permissions.isSuperset(of: cached.permissions) { return false }
        if profile.setsDirtyFlag && cached.dirty && !now.dirty { return false }
        return true
    }
}
