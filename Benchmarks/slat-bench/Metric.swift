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

    /// The workload that produces this metric.
    var workload: Workload {
        switch self {
        case .mapPages: .mapPages
        case .translateRandom, .translateSequential, .outputAddressRandom, .outputAddressSequential: .translate
        case .wrprotect: .wrprotect
        case .unmap: .unmap
        case .pfncache: .pfncache
        }
    }

    /// What one operation is: a page changed or a lookup made.
    var unit: String {
        switch workload {
        case .translate: "lookup"
        case .mapPages, .wrprotect, .unmap: "page"
        case .pfncache: "refresh"
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
        }
    }

    /// Whether the metric times `translate(_:)`, which decodes the leaf's
    /// attributes, rather than an entry point that does not.
    var decodesAttributes: Bool {
        switch self {
        case .translateRandom, .translateSequential: true
        case .mapPages, .outputAddressRandom, .outputAddressSequential, .wrprotect, .unmap, .pfncache: false
        }
    }

    /// The address pattern of a lookup metric, else `nil`.
    var pattern: AccessPattern? {
        switch self {
        case .translateRandom, .outputAddressRandom: .random
        case .translateSequential, .outputAddressSequential: .sequential
        case .mapPages, .wrprotect, .unmap, .pfncache: nil
        }
    }

    /// Position in reports.
    var order: Int { Metric.allCases.firstIndex(of: self) ?? 0 }
}
