/// What one call of the fault handler did (KVM's `RET_PF_*`).
@frozen
public enum FaultOutcome: Sendable, Hashable {
    /// A translation for the address was installed or widened; the vCPU
    /// re-executes the access. `level` is the leaf's height (0 = 4 KiB).
    case fixed(level: Int)
    /// The tables already allowed the access (another vCPU fixed it first,
    /// or the vCPU's TLB held a stale narrower translation); re-execute.
    case spurious
    /// The fault raced an invalidation, a concurrent change or an empty page
    /// cache and changed nothing; re-execute (the fault will come again).
    case retry
}
