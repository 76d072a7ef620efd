/// How writes to a dirty-logged memslot are caught.
@frozen
public enum DirtyLogMode: Sendable, Hashable {
    /// Small leaves are write-protected with the MMU-writable bit kept; the
    /// first write faults, the lockless fast page fault restores write access
    /// and marks the page in the bitmap (KVM's write-protect dirty logging).
    case writeProtect
    /// Small leaves stay writable with a clean dirty bit; hardware sets it on
    /// the first write and get-and-clear harvests it (EPT accessed/dirty
    /// flags required; KVM's D-bit clearing). Huge leaves are write-protected
    /// so the first write splits them.
    case dirtyBit
}
