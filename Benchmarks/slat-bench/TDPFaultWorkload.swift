import SLAT
import SLATx86

/// `tdp fault`: demand-fault the range in 4 KiB pages through the full fault
/// path (resolve, level choice, lock, CAS installs), split among threads.
enum TDPFaultWorkload {
    static func run(_ options: TDPOptions) throws(BenchFailure) -> [TDPResult] {
        var samples: [UInt64] = []
        for repeatIndex in 0...options.repeats {
            let fixture = try TDPFixture(size: options.size, hostSize: .size4K, threads: options.threads,
                                         exclusiveFaults: options.exclusiveLock)
            let threads = options.threads
            let perThread = fixture.frameCount / UInt64(threads)
            let failures = FailureBox()
            let nanoseconds = TDPFixture.parallel(threads) { thread in
                let first = UInt64(thread) * perThread
                do throws(BenchFailure) {
                    try fixture.fault(first..<(first + perThread), access: .write, vcpu: fixture.contexts[thread])
                } catch {
                    failures.record(error)
                }
            }
            if let failure = failures.first { throw failure }
            // Verify: every page maps to its host frame, writable.
            let table = fixture.mmu.table()
            for index in stride(from: 0, to: perThread * UInt64(threads), by: 4099) {
                guard case .mapped(let translation) = table.translate(fixture.address(ofFrame: index)),
                      translation.output.rawValue == (0x20_0000 &+ index) << 12 else {
                    throw .verification("tdp fault: frame \(index) not mapped to its host frame")
                }
            }
            if repeatIndex > 0 { samples.append(nanoseconds) }
            fixture.mmu.teardown()
        }
        let faults = Int(options.size >> 12) / options.threads * options.threads
        let lock = options.exclusiveLock ? "exclusive" : "shared"
        return [TDPResult(name: "fault (\(options.threads) thread\(options.threads == 1 ? "" : "s"), \(lock) lock)",
                          operations: faults, unit: "fault", samples: samples)]
    }
}

/// The first error any thread hit.
final class FailureBox: @unchecked Sendable {
    // @unchecked Sendable: `stored` is only touched under `lock`.
    private let lock = SpinLock()
    private var stored: BenchFailure?
    func record(_ failure: BenchFailure) { lock.withLock { if stored == nil { stored = failure } } }
    var first: BenchFailure? { lock.withLock { stored } }
}
