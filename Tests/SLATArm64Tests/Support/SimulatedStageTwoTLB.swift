import SLATArm64
import SLATCore
import Synchronization

/// Per-vCPU TLBs over a stage-2 table, with two detectors (a stand-in for
/// SLATSim's simulated TLBs, which this branch does not have yet):
///
/// - **conflict**: a vCPU's TLB would hold two entries covering one address
///   (of different sizes, or different outputs) — the TLB conflict abort of
///   seed 003, recorded when the second one is filled;
/// - **break-before-make**: a vCPU uses a cached translation while the table
///   holds a different *valid* translation for that address (an entry
///   changed in place, or replaced without invalidating the old one).
///
/// Fills walk the real tables like the hardware walker (a leaf with the
/// access flag clear faults, as without `VTCR_EL2.HA`). Invalidations follow
/// the architecture: by address with a level hint only removes entries of
/// that size; without a hint, every size; by range and VMID-wide, all.
///
/// Thread-safe: all state behind one mutex; fills read the tables inside it,
/// so an invalidation can never slip between a fill's walk and its insert.
final class SimulatedStageTwoTLB: TLB {
    struct Entry: Hashable, Sendable {
        var start: UInt64
        var size: UInt64
        var output: UInt64
        var permissions: Permissions
        func contains(_ address: UInt64) -> Bool { address >= start && address - start < size }
        func overlaps(_ start: UInt64, _ size: UInt64) -> Bool { self.start < start + size && start < self.start + self.size }
    }

    enum AccessResult: Equatable {
        /// The access completed with this translation.
        case completed(Entry)
        /// The access faulted (no translation, access flag clear, or missing permission).
        case fault
    }

    struct State: Sendable {
        var tlbs: [[Entry]]
        var conflicts: [String] = []
        var breakBeforeMakeViolations: [String] = []
        var addressInvalidations = 0
        var rangeInvalidations = 0
        var contextInvalidations = 0
    }

    let format: StageTwoFormat
    private let state: Mutex<State>

    init(format: StageTwoFormat, vcpus: Int) {
        self.format = format
        self.state = Mutex(State(tlbs: Array(repeating: [], count: vcpus)))
    }

    // MARK: TLB

    func invalidate(address: GuestPhysicalAddress, level: Int?) {
        let size = level.map { format.entrySize(atLevel: $0) }
        state.withLock { state in
            state.addressInvalidations += 1
            for vcpu in state.tlbs.indices {
                state.tlbs[vcpu].removeAll { $0.contains(address.rawValue) && (size == nil || $0.size == size) }
            }
        }
    }

    func invalidate(range: GuestPhysicalRange) {
        state.withLock { state in
            state.rangeInvalidations += 1
            for vcpu in state.tlbs.indices {
                state.tlbs[vcpu].removeAll { $0.overlaps(range.start.rawValue, range.size) }
            }
        }
    }

    func invalidateAll() {
        state.withLock { state in
            state.contextInvalidations += 1
            for vcpu in state.tlbs.indices { state.tlbs[vcpu].removeAll() }
        }
    }

    // MARK: vCPU accesses

    /// A vCPU's access through its TLB: a hit is checked against the table
    /// (break-before-make detector); a miss walks the table and fills the
    /// TLB (conflict detector). Missing permissions fault even on a hit.
    func access<Memory: TableMemory>(
        vcpu: Int, address: GuestPhysicalAddress, needs permissions: Permissions,
        table: PageTable<StageTwoFormat, Memory>, context: PageTableContext
    ) -> AccessResult {
        state.withLock { state in
            let raw = address.rawValue
            let current = table.translate(address, context: context).translation
            let hits = state.tlbs[vcpu].filter { $0.contains(raw) }
            if hits.count > 1 {
                state.conflicts.append("vCPU \(vcpu): \(hits.count) entries hit 0x\(String(raw, radix: 16)): \(hits)")
            }
            if let hit = hits.first {
                if let current, current.leafAddress.rawValue != hit.start || current.size != hit.size
                    || current.leafOutput.rawValue != hit.output {
                    state.breakBeforeMakeViolations.append(
                        "vCPU \(vcpu) used \(hit) at 0x\(String(raw, radix: 16)) while the table maps \(current)")
                }
                return hit.permissions.isSuperset(of: permissions) ? .completed(hit) : .fault
            }
            guard let current, current.attributes.accessed else { return .fault }
            let entry = Entry(start: current.leafAddress.rawValue, size: current.size,
                              output: current.leafOutput.rawValue, permissions: current.attributes.permissions)
            let overlapping = state.tlbs[vcpu].filter { $0.overlaps(entry.start, entry.size) }
            if !overlapping.isEmpty {
                state.conflicts.append("vCPU \(vcpu): filling \(entry) beside \(overlapping)")
            }
            state.tlbs[vcpu].append(entry)
            return entry.permissions.isSuperset(of: permissions) ? .completed(entry) : .fault
        }
    }

    /// Records a break-before-make violation for every cached entry that no
    /// longer matches the table (call when no operation is in flight: every
    /// change has been invalidated by then).
    func checkCoherence<Memory: TableMemory>(with table: PageTable<StageTwoFormat, Memory>) {
        state.withLock { state in
            for vcpu in state.tlbs.indices {
                for entry in state.tlbs[vcpu] {
                    let current = table.translate(GuestPhysicalAddress(entry.start)).translation
                    let matches = current.map {
                        $0.leafAddress.rawValue == entry.start && $0.size == entry.size
                            && $0.leafOutput.rawValue == entry.output
                            && $0.attributes.permissions.isSuperset(of: entry.permissions)
                    } ?? false
                    if !matches {
                        state.breakBeforeMakeViolations.append(
                            "vCPU \(vcpu) still caches \(entry); the table has \(String(describing: current))")
                    }
                }
            }
        }
    }

    var conflicts: [String] { state.withLock { $0.conflicts } }
    var breakBeforeMakeViolations: [String] { state.withLock { $0.breakBeforeMakeViolations } }
    var counts: TLBInvalidationCounts {
        state.withLock {
            TLBInvalidationCounts(addresses: $0.addressInvalidations, ranges: $0.rangeInvalidations,
                                  contexts: $0.contextInvalidations)
        }
    }
    func cachedEntries(vcpu: Int) -> [Entry] { state.withLock { $0.tlbs[vcpu] } }
}

/// The seed-003 bug as a TLB: a VMID-wide invalidation is downgraded to a
/// by-address invalidation (no level hint) of one address — what the merge
/// did before the fix ("TLBI IPAS2E1IS of the input address"). Everything
/// else is forwarded.
final class VMIDFlushDowngradingTLB: TLB {
    let inner: SimulatedStageTwoTLB
    let address: GuestPhysicalAddress

    init(_ inner: SimulatedStageTwoTLB, invalidatingOnly address: GuestPhysicalAddress) {
        self.inner = inner
        self.address = address
    }

    func invalidate(address: GuestPhysicalAddress, level: Int?) { inner.invalidate(address: address, level: level) }
    func invalidate(range: GuestPhysicalRange) { inner.invalidate(range: range) }
    func invalidateAll() { inner.invalidate(address: address, level: nil) }
}
