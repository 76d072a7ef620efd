import SLATCore
import Synchronization

/// The TLB of one simulated vCPU in one translation context: it caches
/// translations with their size, level, permissions and walk path, and
/// runs the conflict and stale-use detectors on them.
///
/// Invalidation semantics are the hardware's: by address with a level hint
/// removes only entries at that level (as Arm's TTL hint allows; pass
/// `honoursLevelHints: false` to the context for hint-blind hardware), by
/// range removes every entry overlapping it, by context removes all.
/// Invalidations of one vCPU's TLB are local; a ``SimulatedContextTLB``
/// broadcasts to all of its vCPUs.
///
/// Locking: one mutex per TLB. The ``HardwareWalker`` holds it for a whole
/// access — lookup, walk, fill — so an invalidation returns only once every
/// walk that might have read the old tables is finished, as a hardware TLB
/// invalidation completes only after in-flight walks. Invalidations may come
/// from any thread; the vCPU's own thread usually makes the accesses.
public final class SimulatedTLB: TLB {
    /// The vCPU this TLB belongs to.
    public let vcpu: Int
    /// The translation context (VMID / EPTP) of its entries.
    public let context: UInt64
    /// Where detector reports go.
    public let log: SimulationLog
    /// Whether filling an entry beside one of another size covering the
    /// same address is reported (Arm: TLB conflict abort). Intel processors
    /// tolerate it; the entries are replaced either way.
    public let reportsConflicts: Bool
    /// Whether a level hint restricts an address invalidation to entries at
    /// that level.
    public let honoursLevelHints: Bool

    @usableFromInline let state: PThreadLocked<TLBStorage>
    let grantCheck: GrantCheck

    init(vcpu: Int, context: UInt64, sizes: [UInt64], capacity: Int, log: SimulationLog,
         reportsConflicts: Bool, honoursLevelHints: Bool, grantCheck: GrantCheck) {
        self.vcpu = vcpu
        self.context = context
        self.log = log
        self.reportsConflicts = reportsConflicts
        self.honoursLevelHints = honoursLevelHints
        self.grantCheck = grantCheck
        self.state = PThreadLocked(TLBStorage(sizes: sizes, capacity: capacity))
    }

    // MARK: Inspection

    /// Every cached entry, in address order.
    public var entries: [CachedTranslation] {
        state.withLock { storage in storage.allKeys.map { storage.levels[$0.level][$0.key]!.translation } }
    }

    /// Entries cached.
    public var count: Int { state.withLock { $0.count } }

    /// What the TLB has done so far.
    public var statistics: TLBStatistics { state.withLock { $0.statistics } }

    /// The entry that covers `address`, without counting a use.
    public func entry(covering address: GuestPhysicalAddress) -> CachedTranslation? {
        state.withLock { storage in
            storage.find(address.rawValue).map { storage.levels[$0.level][$0.key]!.translation }
        }
    }

    // MARK: Filling (the walker, or tests that place entries directly)

    /// Caches `translation` as a walk for an `access` of `address` would,
    /// running the conflict detector.
    public func fill(_ translation: CachedTranslation, accessing address: GuestPhysicalAddress, kind: AccessKind = .read) {
        state.withLock { storage in fill(translation, accessing: address, kind: kind, in: &storage) }
    }

    @usableFromInline
    func fill(_ translation: CachedTranslation, accessing address: GuestPhysicalAddress, kind: AccessKind,
              in storage: inout TLBStorage) {
        // Internal: fills come from HardwareWalker walks of the context's own
        // format, whose leaf levels and sizes are the ones stored here.
        precondition(translation.level >= 0 && translation.level < storage.levelCount, "level outside the format")
        precondition(translation.size == storage.sizes[translation.level], "entry size does not match its level")
        var entry = translation
        entry.vcpu = vcpu
        entry.context = context
        let key = entry.guestAddress.rawValue
        let conflicts = storage.conflicts(level: entry.level, key: key)
        if !conflicts.isEmpty {
            var involved = [entry]
            for (level, oldKey) in conflicts {
                if let slot = storage.remove(level: level, key: oldKey) { involved.append(slot.translation) }
            }
            if reportsConflicts {
                log.record(SimulationReport(kind: .conflict, address: address, vcpu: vcpu, entries: involved,
                                            event: .access(address, kind)))
            }
        }
        storage.insert(entry)
        storage.statistics.fills &+= 1
    }

    /// Records a use of the entry at `(level, key)` for the stale-use detector.
    @usableFromInline
    func noteUse(level: Int, key: UInt64, address: GuestPhysicalAddress, kind: AccessKind, in storage: inout TLBStorage) {
        guard storage.flaggedCount > 0, let slot = storage.levels[level][key], slot.isFlagged else { return }
        if slot.condemned {
            if !slot.useReported {
                storage.levels[level][key]!.useReported = true
                log.record(SimulationReport(kind: .staleUse, address: address, vcpu: vcpu, entries: [slot.translation],
                                            event: .access(address, kind), missedBy: slot.suspectedBy))
            }
        } else if slot.firstSuspectUse == nil {
            storage.levels[level][key]!.firstSuspectUse = address
        }
    }

    // MARK: TLB

    /// Invalidates this vCPU's entries for `address`: with a level hint
    /// (honoured), only the entry at that level. Entries of other sizes that
    /// the invalidation covered but left in place are checked against the
    /// tables (once a walker is attached to the context) and remembered as
    /// suspect if the tables no longer grant them.
    public func invalidate(address: GuestPhysicalAddress, level: LeafLevel?) {
        let check = grantCheck.current
        state.withLock { storage in
            storage.statistics.invalidationsReceived &+= 1
            let raw = address.rawValue
            let hint = honoursLevelHints ? level.flatMap { $0.height >= 0 && $0.height < storage.levelCount ? $0.height : nil } : nil
            guard let hint else {
                for candidate in 0..<storage.levelCount where storage.remove(level: candidate, key: storage.key(raw, level: candidate)) != nil {
                    storage.statistics.entriesInvalidated &+= 1
                }
                return
            }
            if storage.remove(level: hint, key: storage.key(raw, level: hint)) != nil {
                storage.statistics.entriesInvalidated &+= 1
            }
            guard let check, storage.count > 0 else { return }
            var survivors: [(level: Int, key: UInt64)] = []
            for other in 0..<storage.levelCount where other != hint {
                let key = storage.key(raw, level: other)
                if storage.levels[other][key] != nil { survivors.append((other, key)) }
            }
            let spanStart = storage.key(raw, level: hint)
            let spanEnd = spanStart &+ storage.sizes[hint]
            for lower in 0..<hint {
                for key in storage.keys(atLevel: lower, overlapping: spanStart, spanEnd)
                where key != storage.key(raw, level: lower) {
                    survivors.append((lower, key))
                }
            }
            let invalidation = TLBInvalidation.address(address, level: level?.height)
            for (survivorLevel, key) in survivors {
                guard let slot = storage.levels[survivorLevel][key], slot.suspectedBy == nil else { continue }
                if !check(slot.translation) { storage.markSuspect(level: survivorLevel, key: key, by: invalidation) }
            }
        }
    }

    /// Invalidates this vCPU's entries overlapping `range`, any size.
    public func invalidate(range: GuestPhysicalRange) {
        state.withLock { storage in
            storage.statistics.invalidationsReceived &+= 1
            let start = range.start.rawValue
            let end = range.end.rawValue
            for level in 0..<storage.levelCount {
                for key in storage.keys(atLevel: level, overlapping: start, end) {
                    storage.remove(level: level, key: key)
                    storage.statistics.entriesInvalidated &+= 1
                }
            }
        }
    }

    /// Invalidates every entry of this vCPU (and its cached walks).
    public func invalidateAll() {
        state.withLock { storage in
            storage.statistics.invalidationsReceived &+= 1
            storage.statistics.entriesInvalidated &+= storage.removeAll()
        }
    }

    // MARK: Detectors run by the context and the table memory

    /// Checks every entry against the tables; reports the ones no longer
    /// granted (``SimulationReportKind/staleUse`` if used after an
    /// invalidation left it in place, else ``SimulationReportKind/staleEntry``)
    /// and condemns them, so their next use is reported too.
    func verifyCoherence(_ check: GrantCheck.Check) -> [SimulationReport] {
        state.withLock { storage in
            var reports: [SimulationReport] = []
            for (level, key) in storage.allKeys {
                let slot = storage.levels[level][key]!
                if slot.condemned { continue }
                if check(slot.translation) {
                    storage.clearSuspicion(level: level, key: key)
                    continue
                }
                storage.condemn(level: level, key: key)
                let report: SimulationReport
                if let used = slot.firstSuspectUse {
                    storage.levels[level][key]!.useReported = true
                    report = SimulationReport(kind: .staleUse, address: used, vcpu: vcpu, entries: [slot.translation],
                                              event: .coherenceCheck, missedBy: slot.suspectedBy)
                } else {
                    report = SimulationReport(kind: .staleEntry, address: slot.translation.guestAddress, vcpu: vcpu,
                                              entries: [slot.translation], event: .coherenceCheck, missedBy: slot.suspectedBy)
                }
                log.record(report)
                reports.append(report)
            }
            return reports
        }
    }

    /// Reports the entries whose walk went through `page`, which is being
    /// freed, and condemns them.
    func tableFreed(_ page: HostPhysicalAddress) -> SimulationReport? {
        state.withLock { storage in
            guard storage.pathReferences[page.rawValue] != nil else { return nil }
            var involved: [CachedTranslation] = []
            var suspect: TLBInvalidation?
            for (level, key) in storage.allKeys {
                let slot = storage.levels[level][key]!
                guard !slot.condemned, slot.translation.path.contains(page) else { continue }
                involved.append(slot.translation)
                suspect = suspect ?? slot.suspectedBy
                storage.condemn(level: level, key: key)
            }
            guard let first = involved.first else { return nil }
            let report = SimulationReport(kind: .freedTableStillCached, address: first.guestAddress, vcpu: vcpu,
                                          entries: involved, event: .tableFree(page), missedBy: suspect)
            log.record(report)
            return report
        }
    }
}
