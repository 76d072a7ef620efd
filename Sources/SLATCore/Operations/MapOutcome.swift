/// What ``PageTable/map(_:to:attributes:maximumLevel:mode:context:batch:tlb:refusingPermissionOnlyChanges:refill:)``
/// did with the range.
///
/// A value type; it takes no lock.
public enum MapOutcome: Hashable, Sendable {
    /// Every leaf of the range is now the mapping asked for.
    case mapped
    /// The caller asked for permission-only changes to be refused, and at
    /// least one live leaf already mapped the same output with the same size
    /// and attributes but other permissions: it was left as it was (KVM's
    /// `-EAGAIN` from the stage-2 map walker). Racing vCPUs that fault on the
    /// same page must not downgrade each other's permissions; the caller
    /// resumes the guest, which faults again and relaxes permissions if it
    /// still needs more. Every other leaf of the range was mapped.
    case refusedPermissionOnlyChange
    /// The caller passed ``PageCacheRefill/never`` and its page cache ran
    /// short: the range before the shortfall's resume address is mapped
    /// (whether a permission-only change was refused there is not
    /// reported), the rest is untouched or partly mapped. Top the cache up
    /// outside the MMU lock and map again from the resume address.
    case stopped(PageCacheShortfall)
}
