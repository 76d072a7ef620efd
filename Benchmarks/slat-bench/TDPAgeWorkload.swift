import SLAT
import SLATx86

/// `tdp age`: clear-young then test-young over the host range of a
/// populated 4 KiB mapping (A bits, no lock).
enum TDPAgeWorkload {
    static func run(_ options: TDPOptions) throws(BenchFailure) -> [TDPResult] {
        var clear: [UInt64] = []
        var test: [UInt64] = []
        var clearCounters = OperationCounters()
        for repeatIndex in 0...options.repeats {
            let fixture = try TDPFixture(format: options.format, size: options.size, hostSize: .size4K, threads: 1)
            try fixture.fault(0..<fixture.frameCount, access: .read, vcpu: fixture.contexts[0])
            let range = HostVirtualRange(start: TDPFixture.hostBase, size: options.size)
            let context = fixture.contexts[1]
            let before = fixture.snapshot()
            var start = MonotonicClock.now()
            let young = try library("clearYoung") { () throws(SLATError) in try fixture.mmu.clearYoung(range, context: context) }
            let clearTime = MonotonicClock.now() &- start
            clearCounters = OperationCounters(from: before, to: fixture.snapshot())
            start = MonotonicClock.now()
            let stillYoung = try library("testYoung") { () throws(SLATError) in try fixture.mmu.testYoung(range, context: context) }
            let testTime = MonotonicClock.now() &- start
            guard young, !stillYoung else { throw .verification("tdp age: young \(young), after clear \(stillYoung)") }
            if repeatIndex > 0 {
                clear.append(clearTime)
                test.append(testTime)
            }
            fixture.mmu.teardown()
        }
        let pages = Int(options.size >> 12)
        return [TDPResult(name: "age clear-young (A bits)", operations: pages, unit: "page", samples: clear, counters: clearCounters),
                TDPResult(name: "age test-young (none young: full scan)", operations: pages, unit: "page", samples: test)]
    }
}
