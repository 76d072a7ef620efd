import SLATCore

/// What a simulated-hardware detector found wrong.
@frozen
public enum SimulationReportKind: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// Two live entries of different sizes cover one address in one vCPU's
    /// TLB (Arm: TLB conflict abort). Found when the second is filled.
    case conflict
    /// A cached translation the tables no longer grant was used after the
    /// point where the flush owed for it (rule 3 of Docs/concurrency.md) must have
    /// happened: after ``SimulatedContextTLB/verifyCoherence()`` found it
    /// stale, or, found by that check, after an invalidation that covered
    /// its address but left it in place (a level hint that did not match,
    /// a page-level invalidation where the whole context was needed).
    case staleUse
    /// A cached translation the tables no longer grant is still cached at a
    /// point the caller declared quiescent (``SimulatedContextTLB/verifyCoherence()``):
    /// the operation that removed or reduced it reported done without the
    /// flush that would have removed it.
    case staleEntry
    /// A table page was freed while a TLB still held a translation whose walk
    /// went through it (the flush before the free missed it).
    case freedTableStillCached

    public var description: String {
        switch self {
        case .conflict: "TLB conflict"
        case .staleUse: "stale translation used"
        case .staleEntry: "stale translation still cached"
        case .freedTableStillCached: "freed table still cached"
        }
    }
}

/// What the simulator was doing when a detector fired.
@frozen
public enum SimulationEvent: Hashable, Sendable, CustomStringConvertible {
    /// A vCPU access (the hardware walker) filling or using an entry.
    case access(GuestPhysicalAddress, AccessKind)
    /// A coherence check at a quiescent point.
    case coherenceCheck
    /// A table page being freed.
    case tableFree(HostPhysicalAddress)

    public var description: String {
        switch self {
        case .access(let address, let kind): "\(kind) of \(address)"
        case .coherenceCheck: "coherence check"
        case .tableFree(let page): "free of table page \(page)"
        }
    }
}

/// One detector finding: its kind, the guest address, the TLB entries
/// involved, what the simulator was doing and the invalidation (if any)
/// that should have removed the entries.
public struct SimulationReport: Hashable, Sendable, CustomStringConvertible {
    /// What was found.
    public var kind: SimulationReportKind
    /// The guest address concerned (the access, or the stale entry's first address).
    public var address: GuestPhysicalAddress
    /// The vCPU whose TLB holds the entries.
    public var vcpu: Int
    /// The entries involved (for a conflict: the new one first).
    public var entries: [CachedTranslation]
    /// What the simulator was doing.
    public var event: SimulationEvent
    /// The invalidation that covered the address but left the entry in
    /// place, when one did.
    public var missedBy: TLBInvalidation?

    /// A report.
    public init(kind: SimulationReportKind, address: GuestPhysicalAddress, vcpu: Int,
                entries: [CachedTranslation], event: SimulationEvent, missedBy: TLBInvalidation? = nil) {
        self.kind = kind
        self.address = address
        self.vcpu = vcpu
        self.entries = entries
        self.event = event
        self.missedBy = missedBy
    }

    public var description: String {
        var text = "\(kind) at \(address) on vCPU \(vcpu) during \(event)"
        if let missedBy { text += ", left in place by \(missedBy)" }
        for entry in entries { text += "\n    \(entry)" }
        return text
    }
}
