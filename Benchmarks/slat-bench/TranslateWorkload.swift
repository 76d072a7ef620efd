import SLAT

/// `translate`: lookups in one mapping of smallest pages, built and checked
/// once per format. Four metrics: ``PageTable/translate(_:)`` (the headline:
/// the full result, attributes decoded) and ``PageTable/outputAddress(of:)``
/// (output only), each over random and sequential addresses precomputed
/// into arrays so generating them is not timed.
///
/// Every lookup's result is folded into a checksum that is compared, after
/// the timed loop, with the checksum the geometry predicts: the optimiser
/// cannot drop the work, and a wrong lookup fails the run.
enum TranslateWorkload {
    /// Runs the requested translate metrics on `format`.
    static func run<Format: PageTableFormat>(
        _ format: Format, plan: FormatPlan, metrics: [Metric]
    ) throws(BenchFailure) -> [BenchResult] {
        let fixture = try TableFixture(format: format, geometry: plan.geometry, name: plan.format.rawValue)
        try fixture.mapWholeRange()
        var results: [BenchResult] = []
        for metric in metrics {
            guard let pattern = metric.pattern else { continue }
            plan.progress.starting(metric.rawValue, on: plan.format, repeats: plan.repeats, size: plan.geometry.size)
            let addresses = pattern.addresses(count: plan.lookups, over: plan.geometry)
            let expected = expectedChecksum(of: metric, addresses: addresses, geometry: plan.geometry)
            let samples = try RepeatLoop.samples(count: plan.repeats) { () throws(BenchFailure) in
                let before = fixture.snapshot()
                let (nanoseconds, checksum) = addresses.withUnsafeBufferPointer { buffer in
                    metric.decodesAttributes
                        ? timeTranslate(fixture.table, buffer)
                        : timeOutputAddress(fixture.table, buffer)
                }
                guard checksum == expected else {
                    throw .verification("\(plan.format.rawValue) \(metric.rawValue): checksum 0x\(String(checksum, radix: 16)) of \(addresses.count) lookups, expected 0x\(String(expected, radix: 16))")
                }
                return Sample(nanoseconds: nanoseconds, counters: OperationCounters(from: before, to: fixture.snapshot()))
            }
            results.append(BenchResult(metric: metric, format: plan.format, size: plan.geometry.size,
                                       ops: addresses.count, samples: samples))
        }
        return results
    }

    /// Times `translate(_:)` of every address; returns the nanoseconds and
    /// the checksum of the results.
    @inline(never)
    static func timeTranslate<Format: PageTableFormat>(
        _ table: PageTable<Format, TableArena>, _ addresses: UnsafeBufferPointer<UInt64>
    ) -> (UInt64, UInt64) {
        var checksum: UInt64 = 0
        let start = MonotonicClock.now()
        for address in addresses {
            switch table.translate(GuestPhysicalAddress(address)) {
            case .mapped(let translation):
                checksum &+= translation.output.rawValue &+ fold(translation.attributes) &+ UInt64(truncatingIfNeeded: translation.level)
            case .notPresent(let level):
                checksum &+= 0xDEAD_0000 &+ UInt64(truncatingIfNeeded: level)
            case .outsideAddressSpace:
                checksum &+= 0xBAD_0000
            }
        }
        let end = MonotonicClock.now()
        return (end &- start, checksum)
    }

    /// Times `outputAddress(of:)` of every address; returns the nanoseconds
    /// and the checksum of the results.
    @inline(never)
    static func timeOutputAddress<Format: PageTableFormat>(
        _ table: PageTable<Format, TableArena>, _ addresses: UnsafeBufferPointer<UInt64>
    ) -> (UInt64, UInt64) {
        var checksum: UInt64 = 0
        let start = MonotonicClock.now()
        for address in addresses {
            checksum &+= table.outputAddress(of: GuestPhysicalAddress(address))?.rawValue ?? 0xDEAD_0000
        }
        let end = MonotonicClock.now()
        return (end &- start, checksum)
    }

    /// Every field of `attributes` packed into one word, so none of their
    /// decoding can be optimised away.
    @inline(__always)
    static func fold(_ attributes: LeafAttributes) -> UInt64 {
        let memoryType: UInt64 = switch attributes.memoryType {
        case .writeBack: 1
        case .writeThrough: 2
        case .writeProtected: 3
        case .writeCombining: 4
        case .uncached: 5
        case .device: 6
        case .reserved(let raw): 0x100 | UInt64(raw)
        }
        return UInt64(attributes.permissions.rawValue)
            | (attributes.accessed ? 1 << 8 : 0)
            | (attributes.dirty ? 1 << 9 : 0)
            | UInt64(attributes.softwareBits) << 16
            | memoryType << 32
    }

    /// The checksum correct lookups of `addresses` produce, from the geometry alone.
    static func expectedChecksum(of metric: Metric, addresses: [UInt64], geometry: MappingGeometry) -> UInt64 {
        let perLookup: UInt64 = metric.decodesAttributes ? fold(MappingGeometry.attributes) : 0
        var checksum: UInt64 = 0
        for address in addresses {
            checksum &+= geometry.expectedOutput(of: address) &+ perLookup
        }
        return checksum
    }
}
