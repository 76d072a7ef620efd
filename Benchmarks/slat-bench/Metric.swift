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
    /// Stage 2: a write fault handled (one page mapped), one thread, per fault.
    case fault = "fault"
    /// Stage 2: the same with two vCPU threads faulting halves, per fault.
    case faultTwoThreads = "fault-2-threads"
    /// Stage 2: merge of smallest pages into blocks, exclusive, per block.
    case merge = "merge"
    /// Stage 2: the same merge in a shared walk (subtree locked entry by entry, retired), per block.
    case mergeShared = "merge-shared"
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

    /// The workload that produces this metric.
    var workload: Workload {
        switch self {
        case .mapPages: .mapPages
        case .translateRandom, .translateSequential, .outputAddressRandom, .outputAddressSequential: .translate
        case .wrprotect: .wrprotect
        case .unmap: .unmap
        case .pfncache: .pfncache
        case .fault, .faultTwoThreads: .fault
        case .merge, .mergeShared: .merge
        case .split, .splitEager: .split
        case .kvmPageTableTestCreate, .kvmPageTableTestSplit, .kvmPageTableTestMerge: .kvmPageTableTest
        }
    }

    /// What one operation is: a page changed or a lookup made.
    var unit: String {
        switch workload {
        case .translate: "lookup"
        case .mapPages, .wrprotect, .unmap, .kvmPageTableTest: "page"
        case .pfncache: "refresh"
        case .fault: "fault"
        case .merge, .split: "block"
        }
    }

    /// The library entry point timed.
    var entryPoint: String {
        switch self {
        case .mapPages: "map"
        case .translateRandom, .translateSequential: "translate"
        case .outputAddressRandom, .outputAddressSequential: "outputAddress"
        case .wrprotect: "changePermissions"
        case .unmap: "unmap"
        case .pfncache: "PfnCache.refresh"
        case .fault, .faultTwoThreads: "StageTwoFaultHandler.handle"
        case .merge, .mergeShared, .split: "StageTwoPageTable.map"
        case .splitEager: "StageTwoPageTable.splitBlocks"
        case .kvmPageTableTestCreate, .kvmPageTableTestSplit, .kvmPageTableTestMerge: "StageTwoFaultHandler.handle"
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
