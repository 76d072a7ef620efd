import SLATCore
import SLATx86

extension ExtendedPageTableMMU: DirtyLogProtectionBackend {
    /// `enableDirtyLogging(memslot:mode:protection:)` with the default mode and protection (dirty
    /// bits when the EPTP enables A/D flags, else write protection). It
    /// takes the MMU's own ``ExtendedPageTableMMU/lock``, which must be the
    /// `lock` the engine was given.
    public func protectForDirtyLogging<Lock: ReaderWriterLock>(
        memslot: Memslot, guestMemory: GuestMemory, lock: Lock, context: PageTableContext
    ) throws(SLATError) {
        try enableDirtyLogging(memslot: memslot.id)
    }
}
