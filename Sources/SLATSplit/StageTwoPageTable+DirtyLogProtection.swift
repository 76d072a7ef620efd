import SLATArm64
import SLATCore

/// The stage-2 page table protects a memslot for dirty logging with its own
/// ``SLATArm64/StageTwoPageTable/protectForDirtyLogging(memslot:guestMemory:lock:context:)``:
/// it starts the memslot's dirty bitmap and write-protects the slot inside
/// an invalidation of its frames under the MMU lock held exclusively.
extension StageTwoPageTable: DirtyLogProtectionBackend {}
