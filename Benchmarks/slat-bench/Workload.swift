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

    /// The metrics the workload reports, in report order.
    var metrics: [Metric] {
        switch self {
        case .mapPages: [.mapPages]
        case .translate: [.outputAddressRandom, .outputAddressSequential, .translateRandom, .translateSequential]
        case .wrprotect: [.wrprotect]
        case .unmap: [.unmap]
        case .pfncache: [.pfncache]
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
        }
    }
}
