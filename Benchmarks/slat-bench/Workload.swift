/// A workload as `slat-bench list` and `slat-bench run` name it. One
/// workload can report several ``Metric``s (`translate` reports random and
/// sequential lookups, through both lookup entry points).
enum Workload: String, CaseIterable, Sendable {
    /// Map the range with the smallest page in one call into a fresh table.
    case mapPages = "map-pages"
    /// Look up addresses in a mapping of smallest pages.
    case translate = "translate"
    /// Revoke write permission over the whole mapping in one call.
    case wrprotect = "wrprotect"
    /// Unmap the whole mapping in one call and settle the flush.
    case unmap = "unmap"
    /// The pfn cache: `check`, and refresh latency and rate, idle and under
    /// an unrelated invalidation storm, for both refresh strategies.
    case pfncache = "pfncache"
    /// Fault every page in through the backend's fault handler (1 and
    /// `--threads` threads; EPT also the exclusive-lock baseline).
    case fault = "fault"
    /// Stage 2: merge a mapping of smallest pages into blocks (anchored merge).
    case merge = "merge"
    /// Stage 2: split blocks into smallest pages (by map, and by the eager split).
    case split = "split"
    /// Stage 2: kvm_page_table_test's three stages with vCPU threads.
    case kvmPageTableTest = "kvm-page-table-test"
    /// EPT: KVM's dirty_log_perf_test phases, timed one by one.
    case dirtyLog = "dirty-log"
    /// EPT: zap a populated mapping as a notifier invalidation does.
    case zap = "zap"
    /// EPT: clear-young and test-young over a populated mapping.
    case age = "age"
    /// SLATSplit: eager splitting for dirty logging against fault-time
    /// splitting (EPT formats and s2-4k).
    case eagerSplit = "eager-split"
    /// SLATSim: simulated vCPUs accessing a mapping through their TLBs.
    case simAccess = "sim-access"

    /// Whether the workload measures anything on `format`: the backends'
    /// workloads run on their own formats only.
    func applies(to format: BenchFormat) -> Bool {
        switch self {
        case .dirtyLog, .zap, .age: !format.isStageTwo
        case .merge, .split, .kvmPageTableTest: format.isStageTwo
        case .eagerSplit: !format.isStageTwo || format == .stageTwo4K
        default: true
        }
    }

    /// The metrics the workload reports, in report order.
    var metrics: [Metric] {
        switch self {
        case .mapPages: [.mapPages]
        case .translate: [.outputAddressRandom, .outputAddressSequential, .translateRandom, .translateSequential]
        case .wrprotect: [.wrprotect]
        case .unmap: [.unmap]
        case .pfncache: [.pfncache]
        case .fault: [.fault, .faultThreads, .faultThreadsExclusive, .faultThreadsSeparateVMs, .faultCPUTime]
        case .merge: [.merge, .mergeShared, .mergeRange, .mergeSharedRange]
        case .split: [.split, .splitEager]
        case .kvmPageTableTest: [.kvmPageTableTestCreate, .kvmPageTableTestSplit, .kvmPageTableTestMerge]
        case .dirtyLog: [.dirtyLogPopulate, .dirtyLogEnable, .dirtyLogWrite, .dirtyLogGetClear, .dirtyLogRewrite, .dirtyLogDisable]
        case .zap: [.zap]
        case .age: [.ageClearYoung, .ageTestYoung]
        case .simAccess: [.simAccess, .simAccessThreads]
        case .eagerSplit: [.eagerSplit2M, .eagerSplit1G, .eagerSplitWritePass, .faultSplitWritePass]
        }
    }

    /// One line for `slat-bench list`.
    var summary: String {
        switch self {
        case .mapPages:
            "map(range, maximumLevel: 0), exclusive, fresh pre-faulted arena and table per repeat; ns per page"
        case .translate:
            "translate(_:) (full result incl. attributes) and outputAddress(of:), random (SplitMix64) and sequential addresses; ns per lookup"
        case .wrprotect:
            "changePermissions(range, revoke: .write) + settle, exclusive, over a mapping of smallest pages; ns per page"
        case .unmap:
            "unmap(range) + settle, exclusive, of a mapping of smallest pages; ns per page"
        case .pfncache:
            "PfnCache check (ns) and refresh latency p50/p99 + refreshes/s, idle and under an unrelated invalidation storm, legacy vs range-tracked (format-independent)"
        case .fault:
            "write faults for every page through the fault handler, MMU lock shared, 1 and --threads threads (EPT: TDP MMU, + exclusive-lock baseline and CPU time; s2: stage-2 MMU); ns per fault"
        case .merge:
            "s2 only: map(range, blocks) over smallest pages: anchored merge, one VMID-wide flush per block; ns per block"
        case .split:
            "s2 only: map(range, pages) over blocks (break-before-make split), and splitBlocks (eager); ns per block"
        case .kvmPageTableTest:
            "s2 only: 2 vCPU threads fault in blocks, split them under dirty logging, merge them back; ns per page per stage"
        case .dirtyLog:
            "EPT only: populate with 2M faults, enable dirty logging, write every 4K page, get+clear, write again, disable; time per phase"
        case .zap:
            "EPT only: zap(range) of a populated 4 KiB mapping under the exclusive lock, flush included; ns per page"
        case .age:
            "EPT only: clearYoung then testYoung over a populated 4 KiB mapping, no MMU lock; ns per page"
        case .eagerSplit:
            "SLATSplit: split 2M (and 1G) leaves to 4K before dirty logging, then the guest's write pass, vs splitting by write faults; ns per table / page"
        case .simAccess:
            "SLATSim VCPURunner: random reads/writes through simulated TLBs + hardware walker, detectors on, 1 and --threads vCPUs; ns per access"
        }
    }
}
