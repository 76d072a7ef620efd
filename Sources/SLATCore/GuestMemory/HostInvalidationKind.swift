/// Why the host is taking a mapping away or reducing it (the event of an
/// mmu-notifier range).
///
/// A value type; it takes no lock.
public enum HostInvalidationKind: Hashable, Sendable {
    /// The range is unmapped (munmap, MADV_DONTNEED).
    case unmap
    /// The range is moved to other host frames (page migration, compaction).
    case remap
    /// The range loses write access (mprotect, write-protection for CoW).
    case protect
}
