import SLAT
import SLATx86

/// `tdp fault`: demand-fault the range in 4 KiB pages through the full fault
/// path (resolve, level choice, lock, CAS installs), split among threads.
enum TDPFaultWorkload {
    static func run(_ options: TDPOptions) throws(BenchFailure) -> [TDPResult] {
        var samples: [UInt64] = []
        var cpuSamples: [UInt64] = []
        for repeatIndex in 0...options.repeats {
            let fixture = try TDPFixture(size: options.size, hostSize: .size4K, threads: options.threads,
                                         exclusiveFaults: options.exclusiveLock)
            let threads = options.threads
            let perThread = fixture.frameCount / UInt64(threads)
            let failures = FirstFailure<BenchFailure>()
            let (nanoseconds, cpu) = TDPFixture.parallel(threads) { thread in
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
            if repeatIndex > 0 {
                samples.append(nanoseconds)
                cpuSamples.append(cpu)
            }
            fixture.mmu.teardown()
        }
        let faults = Int(options.size >> 12) / options.threads * options.threads
        let lock = options.exclusiveLock ? "exclusive" : "shared"
        let name = "fault (\(options.threads) thread\(options.threads == 1 ? "" : "s"), \(lock) lock)"
        var results = [
            TDPResult(name: name + " wall", operations: faults, unit: "fault", samples: samples),
            TDPResult(name: name + " thread CPU time, all threads", operations: faults, unit: "fault", samples: cpuSamples),
        ]
        if options.threads == 1 { results.append(try resolveOnly(options)) }
        return results
    }

    /// The host side alone: GuestMemory.resolve for every frame (memslot
    /// lookup, host page lookup, invalidation snapshot), single thread, CPU time.
    static func resolveOnly(_ options: TDPOptions) throws(BenchFailure) -> TDPResult {
        var samples: [UInt64] = []
        let fixture = try TDPFixture(size: options.size, hostSize: .size4K, threads: 1)
        for repeatIndex in 0...options.repeats {
            let start = TDPFixture.threadCPUTime()
            var sum: UInt64 = 0
            for index in 0..<fixture.frameCount {
                do throws(SLATError) {
                    sum &+= try fixture.guestMemory.resolve(frame: fixture.address(ofFrame: index).frame, write: true).hostFrame.rawValue
                } catch {
                    throw .library("resolve", error)
                }
            }
            let time = TDPFixture.threadCPUTime() &- start
            guard sum != 0 else { throw .verification("resolve returned nothing") }
            if repeatIndex > 0 { samples.append(time) }
        }
        fixture.mmu.teardown()
        return TDPResult(name: "for comparison: GuestMemory.resolve alone (what the per-vCPU memo skips), thread CPU time",
                         operations: Int(fixture.frameCount), unit: "fault", samples: samples)
    }
}

/// The first error any thread hit.
