/// One reported figure: a result line of the table and of `--json`.
enum Metric: String, CaseIterable, Sendable {
    /// `map` of the whole range with smallest pages, per page.
    case mapPages = "map-pages"
    /// The translation lookup, guest address to output address
    /// (`outputAddress(of:)`), of precomputed random addresses, per lookup:
    /// the like-for-like figure for the target (a walk returning the output).
    case outputAddressRandom = "translate-random"
    /// The translation lookup of addresses page after page, per lookup.
    case outputAddressSequential = "translate-sequential"
    /// `translate(_:)`, which also decodes every attribute of the leaf into
    /// a `Translation`, of random addresses, per lookup.
    case translateRandom = "translate-attributes-random"
    /// `translate(_:)` of addresses page after page, per lookup.
    case translateSequential = "translate-attributes-sequential"
    /// `changePermissions(revoke: .write)` + settle, per page.
    case wrprotect = "wrprotect"
    /// `unmap` + settle, per page.
    case unmap = "unmap"
    /// The pfn cache figures (one report of several figures; see
    /// ``PfnCacheWorkload``).
    case pfncache = "pfncache"
    /// A write fault handled through the backend's fault handler (one
    /// smallest page mapped), one thread, MMU lock shared; per fault.
    case fault = "fault"
    /// The same with `--threads` vCPU threads (default 2) faulting their
    /// parts of the range at once; wall time per fault.
    case faultThreads = "fault-threads"
    /// EPT: the same threads with faults taking the MMU lock exclusively,
    /// the baseline that shows what the shared lock buys.
    case faultThreadsExclusive = "fault-threads-exclusive-lock"
    /// EPT: the same threads, each faulting a VM of its own (own MMU, lock,
    /// tables and guest memory): nothing in SLAT is shared, so this is the
    /// machine's own ceiling for the two-thread fault rate.
    case faultThreadsSeparateVMs = "fault-threads-separate-vms"
    /// EPT: thread CPU time per fault of the one-thread run (less sensitive
    /// to other load than wall time).
    case faultCPUTime = "fault-cpu-time"
    /// Stage 2: merge of smallest pages into blocks, exclusive, per block.
    case merge = "merge"
    /// Stage 2: the same merge in a shared walk (subtree locked entry by entry, retired), per block.
    case mergeShared = "merge-shared"
    /// Stage 2: the exclusive merge with a TLB that has range invalidation
    /// (FEAT_TLBIRANGE): one range invalidation per block, no VMID-wide one.
    case mergeRange = "merge-range-tlbi"
    /// Stage 2: the shared merge with range invalidation.
    case mergeSharedRange = "merge-shared-range-tlbi"
    /// Stage 2: blocks split into smallest pages by `map`, per block.
    case split = "split"
    /// Stage 2: blocks split by `splitBlocks` (unlinked subtree + one exchange), per block.
    case splitEager = "split-eager"
    /// Stage 2: kvm_page_table_test stage 1 (create mappings), per page.
    case kvmPageTableTestCreate = "kvm-page-table-test-create"
    /// Stage 2: stage 2 (dirty logging: write-protect, split by write faults), per page.
    case kvmPageTableTestSplit = "kvm-page-table-test-split"
    /// Stage 2: stage 3 (log cancelled: faults merge back into blocks), per page.
    case kvmPageTableTestMerge = "kvm-page-table-test-merge"
    /// EPT dirty logging, phase 1: populate the 2 MiB-backed range with 2 MiB write faults; per fault.
    case dirtyLogPopulate = "dirty-log-populate"
    /// Phase 2: enable dirty logging (write-protect, or clear D bits); per 4 KiB page.
    case dirtyLogEnable = "dirty-log-enable"
    /// Phase 3: one write to every 4 KiB page (faults that split the huge leaves); per fault.
    case dirtyLogWrite = "dirty-log-write"
    /// Phase 4: get and clear the dirty log (re-protects what it reports); per page.
    case dirtyLogGetClear = "dirty-log-get-clear"
    /// Phase 5: a second write pass over the re-protected pages (fast page faults); per fault.
    case dirtyLogRewrite = "dirty-log-rewrite"
    /// Phase 6: disable dirty logging, recovering huge leaves in place; per page.
    case dirtyLogDisable = "dirty-log-disable"
    /// EPT: notifier-style zap of a populated 4 KiB mapping, flush included; per page.
    case zap = "zap"
    /// EPT: clear-young over a populated mapping (A bits or access tracking); per page.
    case ageClearYoung = "age-clear-young"
    /// EPT: test-young over the same mapping, none young (a full scan); per page.
    case ageTestYoung = "age-test-young"
    /// SLATSplit: the eager split of the range's 2 MiB leaves to 4 KiB
    /// (EPT: ept4-ad with D-bit logging unless `--dirty-mode`; stage 2: s2-4k);
    /// per table page linked (512 per GiB).
    case eagerSplit2M = "eager-split-2m"
    /// The same from 1 GiB leaves (to 2 MiB, then 4 KiB); per table page.
    case eagerSplit1G = "eager-split-1g"
    /// The guest's first write to every 4 KiB page after dirty logging was
    /// enabled with the eager split; per page.
    case eagerSplitWritePass = "eager-split-write-pass"
    /// The same write pass with the engine off: each huge leaf is split by
    /// its first write fault; per page.
    case faultSplitWritePass = "fault-split-write-pass"
    /// SLATSim: random accesses by one simulated vCPU through its TLB and
    /// the hardware walker, detectors on; per access.
    case simAccess = "sim-access"
    /// The same with `--threads` vCPU threads at once; wall time per access.
    case simAccessThreads = "sim-access-threads"

    /// The workload that produces this metric.
    var workload: Workload {
        switch self {
        case .mapPages: .mapPages
        case .translateRandom, .translateSequential, .outputAddressRandom, .outputAddressSequential: .translate
        case .wrprotect: .wrprotect
        case .unmap: .unmap
        case .pfncache: .pfncache
        case .fault, .faultThreads, .faultThreadsExclusive, .faultThreadsSeparateVMs, .faultCPUTime: .fault
        case .dirtyLogPopulate, .dirtyLogEnable, .dirtyLogWrite, .dirtyLogGetClear, .dirtyLogRewrite, .dirtyLogDisable: .dirtyLog
        case .zap: .zap
        case .ageClearYoung, .ageTestYoung: .age
        case .simAccess, .simAccessThreads: .simAccess
        case .eagerSplit2M, .eagerSplit1G, .eagerSplitWritePass, .faultSplitWritePass: .eagerSplit
        case .merge, .mergeShared, .mergeRange, .mergeSharedRange: .merge
        case .split, .splitEager: .split
        case .kvmPageTableTestCreate, .kvmPageTableTestSplit, .kvmPageTableTestMerge: .kvmPageTableTest
        }
    }

    /// What one operation is: a page changed or a lookup made.
    var unit: String {
        switch workload {
        case .translate: "lookup"
        case .mapPages, .wrprotect, .unmap, .kvmPageTableTest, .zap, .age: "page"
        case .pfncache: "refresh"
        case .simAccess: "access"
        case .eagerSplit:
            switch self {
            case .eagerSplit2M, .eagerSplit1G: "table"
            default: "page"
            }
        case .fault: "fault"
        case .merge, .split: "block"
        case .dirtyLog:
            switch self {
            case .dirtyLogPopulate, .dirtyLogWrite, .dirtyLogRewrite: "fault"
            default: "page"
            }
        }
    }

    /// The library entry point timed on `format`.
    func entryPoint(on format: BenchFormat) -> String {
        switch self {
        case .mapPages: "map"
        case .translateRandom, .translateSequential: "translate"
        case .outputAddressRandom, .outputAddressSequential: "outputAddress"
        case .wrprotect: "changePermissions"
        case .unmap: "unmap"
        case .pfncache: "PfnCache.refresh"
        case .fault, .faultThreads, .faultThreadsExclusive, .faultThreadsSeparateVMs, .faultCPUTime, .kvmPageTableTestCreate,
             .kvmPageTableTestSplit, .kvmPageTableTestMerge:
            format.isStageTwo ? "StageTwoFaultHandler.handle" : "ExtendedPageTableMMU.handleFault"
        case .merge, .mergeShared, .mergeRange, .mergeSharedRange, .split: "StageTwoPageTable.map"
        case .splitEager: "StageTwoPageTable.splitBlocks"
        case .dirtyLogPopulate, .dirtyLogWrite, .dirtyLogRewrite: "ExtendedPageTableMMU.handleFault"
        case .dirtyLogEnable: "ExtendedPageTableMMU.enableDirtyLogging"
        case .dirtyLogGetClear: "ExtendedPageTableMMU.getAndClearDirtyLog"
        case .dirtyLogDisable: "ExtendedPageTableMMU.disableDirtyLogging"
        case .zap: "ExtendedPageTableMMU.zap"
        case .ageClearYoung: "ExtendedPageTableMMU.clearYoung"
        case .ageTestYoung: "ExtendedPageTableMMU.testYoung"
        case .simAccess, .simAccessThreads: "VCPURunner.run"
        case .eagerSplit2M, .eagerSplit1G: "EagerSplitEngine.split"
        case .eagerSplitWritePass, .faultSplitWritePass:
            format.isStageTwo ? "StageTwoFaultHandler.handle" : "ExtendedPageTableMMU.handleFault"
        }
    }

    /// Whether the metric times `translate(_:)`, which decodes the leaf's
    /// attributes, rather than an entry point that does not.
    var decodesAttributes: Bool {
        switch self {
        case .translateRandom, .translateSequential: true
        default: false
        }
    }

    /// The address pattern of a lookup metric, else `nil`.
    var pattern: AccessPattern? {
        switch self {
        case .translateRandom, .outputAddressRandom: .random
        case .translateSequential, .outputAddressSequential: .sequential
        default: nil
        }
    }

    /// Position in reports.
    var order: Int { Metric.allCases.firstIndex(of: self) ?? 0 }
}
