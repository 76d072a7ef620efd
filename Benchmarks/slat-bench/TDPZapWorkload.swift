import SLAT
import SLATx86

/// `tdp zap`: zap a populated 4 KiB mapping of the whole range, as an
/// mmu-notifier unmap does (exclusive lock, batched flush, lock yielding).
enum TDPZapWorkload {
    static func run(_ options: TDPOptions) throws(BenchFailure) -> [TDPResult] {
        var samples: [UInt64] = []
        var counters = OperationCounters()
        for repeatIndex in 0...options.repeats {
            let fixture = try TDPFixture(format: options.format, size: options.size, hostSize: .size4K, threads: 1)
            try fixture.fault(0..<fixture.frameCount, access: .write, vcpu: fixture.contexts[0])
            let before = fixture.snapshot()
            let start = MonotonicClock.now()
            let removed = try library("zap") { () throws(SLATError) in try fixture.mmu.zap(fixture.frames) }
            let time = MonotonicClock.now() &- start
            counters = OperationCounters(from: before, to: fixture.snapshot())
            guard removed == Int(fixture.frameCount), fixture.tlb.counts.total > 0 else {
                throw .verification("tdp zap: removed \(removed) of \(fixture.frameCount) leaves")
            }
            if repeatIndex > 0 { samples.append(time) }
            fixture.mmu.teardown()
        }
        return [TDPResult(name: "zap (4K leaves)", operations: Int(options.size >> 12), unit: "page", samples: samples, counters: counters)]
    }
}
