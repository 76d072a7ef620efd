import SLAT
import SLATx86

/// One timed figure of a TDP workload: the median and spread of its samples.
struct TDPResult: Sendable {
    let name: String
    let operations: Int
    let unit: String
    let samples: [UInt64]
    /// TLB invalidations and table pages of the last timed repeat.
    var counters = OperationCounters.unmeasured

    var sorted: [UInt64] { samples.sorted() }
    var median: UInt64 { sorted[sorted.count / 2] }
    var perOperation: Double { Double(median) / Double(max(operations, 1)) }

    var line: String {
        let ms = Double(median) / 1e6
        let low = Double(sorted.first ?? 0) / Double(max(operations, 1))
        let high = Double(sorted.last ?? 0) / Double(max(operations, 1))
        return "\(name): \(DecimalText.fixed(perOperation, 2)) ns/\(unit) (spread \(DecimalText.fixed(low, 2))-\(DecimalText.fixed(high, 2))), "
            + "\(DecimalText.fixed(ms, 3)) ms for \(operations) \(unit)s, \(samples.count) timed repeats"
    }
}
