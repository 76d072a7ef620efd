import SLAT
import SLATx86

/// The parameters of one run of an x86 TDP MMU workload, set from the
/// ``FormatPlan`` by ``TDPWorkloads``.
struct TDPOptions: Sendable {
    /// The EPT format of the VM's tables.
    var format: ExtendedPageTableFormat
    /// Also time `GuestMemory.resolve` alone (the fault workload, one thread).
    var comparesResolve = false
    /// The workload: fault, dirty-log, zap or age.
    var workload: TDPWorkload = .fault
    /// Guest bytes (default 1 GiB).
    var size: UInt64 = 1 << 30
    /// Timed repeats (after one warm-up).
    var repeats = 5
    /// Faulting threads (fault workload).
    var threads = 1
    /// Faults take the MMU lock exclusively (baseline).
    var exclusiveLock = false
    /// Each thread faults a VM of its own (the machine's ceiling).
    var separateVMs = false
    /// Dirty-log mode (dirty-log workload).
    var dirtyMode: DirtyLogMode = .writeProtect

    /// The defaults for `format`.
    init(format: ExtendedPageTableFormat) { self.format = format }
}

/// The TDP MMU workloads.
enum TDPWorkload: String, CaseIterable, Sendable {
    case fault
    case dirtyLog = "dirty-log"
    case zap
    case age
    case eagerSplit = "eager-split"
}
