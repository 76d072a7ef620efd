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
    /// Stage 2: fault every page in through the fault handler (1 and 2 threads).
    case fault = "fault"
    /// Stage 2: merge a mapping of smallest pages into blocks (anchored merge).
    case merge = "merge"
    /// Stage 2: split blocks into smallest pages (by map, and by the eager split).
    case split = "split"
    /// Stage 2: kvm_page_table_test's three stages with vCPU threads.
    case kvmPageTableTest = "kvm-page-table-test"

    /// The metrics the workload reports, in report order.
    var metrics: [Metric] {
        switch self {
        case .mapPages: [.mapPages]
        case .translate: [.outputAddressRandom, .outputAddressSequential, .translateRandom, .translateSequential]
        case .wrprotect: [.wrprotect]
        case .unmap: [.unmap]
        case .pfncache: [.pfncache]
        case .fault: [.fault, .faultTwoThreads]
        case .merge: [.merge, .mergeShared]
        case .split: [.split, .splitEager]
        case .kvmPageTableTest: [.kvmPageTableTestCreate, .kvmPageTableTestSplit, .kvmPageTableTestMerge]
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
            "s2 only: StageTwoFaultHandler.handle (MMU lock shared) for every page, write faults; ns per fault"
        case .merge:
            "s2 only: map(range, blocks) over smallest pages: anchored merge, one VMID-wide flush per block; ns per block"
        case .split:
            "s2 only: map(range, pages) over blocks (break-before-make split), and splitBlocks (eager); ns per block"
        case .kvmPageTableTest:
            "s2 only: 2 vCPU threads fault in blocks, split them under dirty logging, merge them back; ns per page per stage"
        }
    }
}
