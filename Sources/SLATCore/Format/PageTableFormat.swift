/// A second-level page-table format: its geometry and the encoding of its entries.
///
/// Levels are counted as **heights**: level 0 holds the smallest pages (EPT
/// level 1, Arm level 3), and ``rootLevel`` is the table the root register
/// points at. ``architecturalLevel(_:)`` gives the manual's number.
///
/// Entries are raw 64-bit words. The core never interprets a bit itself; it
/// asks the format through these requirements, which conforming types mark
/// `@inlinable` so the generic walkers specialise to straight-line code.
///
/// Conformances must be value types whose requirements are pure functions of
/// their stored configuration; they are read concurrently from many threads.
public protocol PageTableFormat: Sendable {
    /// log2 of the translation granule: 12 (4 KiB), 14 (16 KiB) or 16 (64 KiB).
    /// Table pages are one granule each.
    var granuleShift: Int { get }
    /// Index bits one table resolves below the root: granuleShift - 3.
    var bitsPerLevel: Int { get }
    /// Height of the root table (levels in a walk minus one).
    var rootLevel: Int { get }
    /// Tables concatenated at the root (1 when the root is one table).
    var rootTableCount: Int { get }
    /// Guest address bits the tables translate (EPT: 48 or 57; Arm: the IPA size).
    var inputAddressBits: Int { get }
    /// Host-physical address bits an output address may use.
    var outputAddressBits: Int { get }
    /// Width of ``LeafAttributes/softwareBits`` for this format.
    var softwareBitCount: Int { get }
    /// Whether a valid entry must be made invalid and the TLB invalidated
    /// before it is replaced by one with another output address or size
    /// (Arm break-before-make). EPT does not require it.
    var requiresBreakBeforeMake: Bool { get }

    /// The manual's number for a height (EPT: height + 1; Arm: 3 - height).
    func architecturalLevel(_ level: Int) -> Int
    /// Whether an entry at `level` may be a leaf (page or block).
    func canHoldLeaf(atLevel level: Int) -> Bool

    /// A value no walker treats as present, written by a thread that owns an
    /// entry while it changes it (KVM's frozen / locked entry); other shared
    /// walkers seeing it wait or retry. Hardware treats it as not present.
    var frozenEntry: UInt64 { get }
    /// Whether the hardware walker would use the entry (table or leaf).
    func isPresent(_ entry: UInt64, atLevel level: Int) -> Bool
    /// Whether a present entry points to a next-level table.
    func isTable(_ entry: UInt64, atLevel level: Int) -> Bool

    /// A table entry for a child table page at `child`, with full permissions
    /// so that the leaves decide.
    func tableEntry(child: HostPhysicalAddress) -> UInt64
    /// The child table page a table entry points to.
    func childTable(of entry: UInt64) -> HostPhysicalAddress
    /// The child table if `entry` is a present table entry at `level`, else
    /// `nil`: one step of a lookup. The default asks ``isPresent(_:atLevel:)``
    /// and ``isTable(_:atLevel:)``; a format whose table entries have one
    /// fixed type pattern answers with a single test.
    func childTableIfTable(_ entry: UInt64, atLevel level: Int) -> HostPhysicalAddress?
    /// Whether lookups should ask ``childTableIfTable(_:atLevel:)`` first
    /// (one test per level) rather than ``isPresent(_:atLevel:)`` then
    /// ``isTable(_:atLevel:)``. A per-format choice because it is measured:
    /// cheaper for stage 2, dearer for EPT, whose presence test is one mask.
    static var testsTablesFirst: Bool { get }

    /// Throws unless `attributes` can be encoded by this format.
    func validate(_ attributes: LeafAttributes) throws(SLATError)
    /// A leaf at `level` mapping `output` (aligned to the level's size) with
    /// attributes that passed ``validate(_:)``.
    func leafEntry(output: HostPhysicalAddress, attributes: LeafAttributes, atLevel level: Int) -> UInt64
    /// The output address of a leaf at `level`.
    func outputAddress(ofLeaf entry: UInt64, atLevel level: Int) -> HostPhysicalAddress
    /// The attributes of a leaf.
    func attributes(ofLeaf entry: UInt64, atLevel level: Int) -> LeafAttributes
    /// The leaf with `grant` added to and `revoke` removed from its permissions
    /// (revoke wins), everything else unchanged. Must be cheap: range
    /// permission changes call it once per entry.
    func changingPermissions(ofLeaf entry: UInt64, grant: Permissions, revoke: Permissions) -> UInt64
    /// The permissions of a leaf (faster than ``attributes(ofLeaf:atLevel:)``).
    func permissions(ofLeaf entry: UInt64) -> Permissions
    /// The accesses a present table entry at `level` lets a walk through
    /// (formats whose table entries carry permission bits, as EPT's R/W/X:
    /// an access must be allowed by every entry of its walk). Formats
    /// without them return ``Permissions/all``.
    func permissions(ofTable entry: UInt64, atLevel level: Int) -> Permissions
    /// The same leaf moved to the next output address at the same level:
    /// `entry` plus one leaf size in its address field. Used to fill runs.
    func leafEntry(_ entry: UInt64, advancedBy bytes: UInt64) -> UInt64
    /// The first entry of the table that replaces the leaf `entry` at
    /// `level` (> 0): a leaf at `level - 1` with the same output address and
    /// every other bit unchanged, so a split is invisible to the guest.
    func splitLeaf(_ entry: UInt64, fromLevel level: Int) -> UInt64
    /// Whether hardware may set accessed/dirty bits in leaves at all (EPT
    /// A/D, stage-2 HA). When `false` no entry is ever volatile and exclusive
    /// writers use plain stores throughout.
    var hardwareUpdatesAccessFlags: Bool { get }
    /// Whether hardware may change this present leaf behind the MMU lock
    /// (for instance set its dirty bit): a *volatile* entry (rule 5 of
    /// Docs/concurrency.md), which even an exclusive writer replaces by compare-and-exchange so
    /// that bit is never lost. Only consulted when
    /// ``leavesChangeOutsideTheLock`` is `true`.
    func isVolatile(_ entry: UInt64, atLevel level: Int) -> Bool
    /// Whether anything outside the MMU lock may change leaves: hardware
    /// (``hardwareUpdatesAccessFlags``) or a backend's lockless fault path
    /// (the stage-2 fast permission fault restoring write access). When
    /// `true`, exclusive writers consult ``isVolatile(_:atLevel:)`` for
    /// every present entry and exchange the volatile ones (rule 5 of
    /// Docs/concurrency.md). A format whose lockless path only restores
    /// write access must drop, when write is revoked
    /// (``changingPermissions(ofLeaf:grant:revoke:)``), the state that
    /// makes a leaf volatile: exclusive revokes of write then store every
    /// entry without exchanges. Default: ``hardwareUpdatesAccessFlags``.
    var leavesChangeOutsideTheLock: Bool { get }
    /// The leaf `entry` write-protected for dirty logging: write access
    /// removed, and whatever the format records so that a lockless fault
    /// path may give it back (stage 2's MMU-writable software bit). A leaf
    /// without write access is returned unchanged. Default: write revoked
    /// as ``changingPermissions(ofLeaf:grant:revoke:)`` revokes it.
    func writeProtectedForDirtyLogging(_ entry: UInt64, atLevel level: Int) -> UInt64
    /// The permission change as two masks, if one exists that is exact for
    /// *every* value an entry may hold: `(entry | set) & ~clear` equals
    /// ``changingPermissions(ofLeaf:grant:revoke:)`` for present leaves and
    /// leaves every non-present value (empty, frozen) unchanged. Bulk
    /// permission changes then need no per-entry presence test (a load, an
    /// AND and a single-copy-atomic store per entry). `nil` (the default)
    /// when no such form exists — grants always, since they would make empty
    /// entries present.
    func permissionMasks(grant: Permissions, revoke: Permissions) -> (set: UInt64, clear: UInt64)?
}

extension PageTableFormat {
    /// Default: hardware never writes entries.
    @inlinable public var hardwareUpdatesAccessFlags: Bool { false }

    /// Default: only hardware changes leaves behind the lock.
    @inlinable public var leavesChangeOutsideTheLock: Bool { hardwareUpdatesAccessFlags }

    /// Default: write revoked, nothing recorded.
    @inlinable
    public func writeProtectedForDirtyLogging(_ entry: UInt64, atLevel level: Int) -> UInt64 {
        changingPermissions(ofLeaf: entry, grant: [], revoke: .write)
    }

    /// Default: no mask form; bulk changes test each entry.
    @inlinable
    public func permissionMasks(grant: Permissions, revoke: Permissions) -> (set: UInt64, clear: UInt64)? { nil }

    /// Default: every present leaf is volatile when hardware updates flags.
    @inlinable
    public func isVolatile(_ entry: UInt64, atLevel level: Int) -> Bool {
        hardwareUpdatesAccessFlags && isLeaf(entry, atLevel: level)
    }

    /// Default split: re-encode the decoded attributes one level down. Formats
    /// with bits outside ``LeafAttributes`` override this to keep them.
    @inlinable
    public func splitLeaf(_ entry: UInt64, fromLevel level: Int) -> UInt64 {
        leafEntry(output: outputAddress(ofLeaf: entry, atLevel: level),
                  attributes: attributes(ofLeaf: entry, atLevel: level), atLevel: level - 1)
    }

    /// Whether a leaf with these permissions (and otherwise default
    /// attributes) can be encoded.
    @inlinable
    public func canEncode(_ permissions: Permissions) -> Bool {
        do {
            try validate(LeafAttributes(permissions: permissions))
            return true
        } catch {
            return false
        }
    }
}

extension PageTableFormat {
    /// Bytes in one table page (the granule).
    @inlinable public var tablePageSize: Int { 1 << granuleShift }
    /// Entries in one (non-root) table page.
    @inlinable public var entriesPerTable: Int { 1 &<< bitsPerLevel }
    /// Smallest mapping size: one granule.
    @inlinable public var pageSize: UInt64 { 1 << UInt64(granuleShift) }
    /// Levels a walk visits.
    @inlinable public var levelCount: Int { rootLevel + 1 }
    /// Bytes of guest-physical space the tables translate.
    // Wrapping shift and truncating conversion: no trap check where it is
    // inlined (`inputAddressBits` is below 64 there).
    @inlinable public var inputAddressSpaceSize: UInt64 {
        inputAddressBits >= 64 ? .max : 1 &<< UInt64(truncatingIfNeeded: inputAddressBits)
    }
    /// log2 of the bytes one entry at `level` maps.
    // Wrapping arithmetic and masking shifts below: levels are small and
    // validated by the format, and these run once per level of every walk.
    @inlinable public func shift(atLevel level: Int) -> Int { granuleShift &+ bitsPerLevel &* level }
    /// Bytes one entry at `level` maps (the leaf size if it holds a leaf).
    @inlinable public func entrySize(atLevel level: Int) -> UInt64 { 1 &<< UInt64(truncatingIfNeeded: shift(atLevel: level)) }
    /// Entries the root (all its concatenated tables together) holds.
    @inlinable public var rootEntryCount: Int { 1 &<< (inputAddressBits &- shift(atLevel: rootLevel)) }
    /// Entries in a table at `level`.
    @inlinable public func entryCount(atLevel level: Int) -> Int { level == rootLevel ? rootEntryCount : entriesPerTable }
    /// The index of `address`'s entry within its table at `level`.
    @inlinable
    public func index(of address: GuestPhysicalAddress, atLevel level: Int) -> Int {
        let shifted = address.rawValue &>> UInt64(truncatingIfNeeded: shift(atLevel: level))
        return Int(truncatingIfNeeded: shifted & UInt64(truncatingIfNeeded: entryCount(atLevel: level) &- 1))
    }
    /// Default: `false`, presence first.
    @inlinable public static var testsTablesFirst: Bool { false }
    /// Default: present, not height 0, and a table.
    @inlinable
    public func childTableIfTable(_ entry: UInt64, atLevel level: Int) -> HostPhysicalAddress? {
        level != 0 && isPresent(entry, atLevel: level) && isTable(entry, atLevel: level) ? childTable(of: entry) : nil
    }
    /// Whether the entry is a present leaf.
    @inlinable
    public func isLeaf(_ entry: UInt64, atLevel level: Int) -> Bool {
        isPresent(entry, atLevel: level) && !isTable(entry, atLevel: level)
    }
    /// The largest level `<= maxLevel` that may hold a leaf, or `nil`.
    @inlinable
    public func largestLeafLevel(atMost maxLevel: Int) -> Int? {
        var level = min(maxLevel, rootLevel)
        while level >= 0 {
            if canHoldLeaf(atLevel: level) { return level }
            level -= 1
        }
        return nil
    }
    /// The largest address bits an output may need: `1 << outputAddressBits`.
    @inlinable public var outputAddressLimit: UInt64 { outputAddressBits >= 64 ? .max : 1 << UInt64(outputAddressBits) }
}

extension PageTableFormat {
    /// Table entries carry no permissions unless the format says so.
    @inlinable
    public func permissions(ofTable entry: UInt64, atLevel level: Int) -> Permissions { .all }
}
