import SLAT
import SLATx86

/// `tdp fault`: demand-fault the range in 4 KiB pages through the full fault
/// path (resolve, level choice, lock, CAS installs), split among threads.
enum TDPFaultWorkload {
    static func run(_ options: TDPOptions) throws(BenchFailure) -> [TDPResult] {
        var samples: [UInt64] = []
        var cpuSamples: [UInt64] = []
        var counters = OperationCounters()
        for repeatIndex in 0...options.repeats {
            // One VM, or with `separateVMs` one VM per thread, each VM
            // covering the whole range so every thread faults the same
            // frames of its VM that it would fault of the shared one.
            let vmCount = options.separateVMs ? options.threads : 1
            var fixtures: [TDPFixture] = []
            for _ in 0..<vmCount {
                fixtures.append(try TDPFixture(format: options.format, size: options.size, hostSize: .size4K,
                                               threads: options.threads, exclusiveFaults: options.exclusiveLock))
            }
            let vms = FixtureList(fixtures)
            let threads = options.threads
            let perThread = fixtures[0].frameCount / UInt64(threads)
            let failures = FirstFailure<BenchFailure>()
            let before = fixtures.map { $0.snapshot() }
            let (nanoseconds, cpu) = TDPFixture.parallel(threads) { thread in
                let first = UInt64(thread) * perThread
                let fixture = vms.fixture(forThread: thread)
                do throws(BenchFailure) {
                    try fixture.fault(first..<(first + perThread), access: .write, vcpu: fixture.contexts[thread])
                } catch {
                    failures.record(error)
                }
            }
            if let failure = failures.first { throw failure }
            counters = OperationCounters(from: before[0], to: fixtures[0].snapshot())
            // Verify: every page maps to its host frame, writable, in the VM
            // of the thread that faulted it.
            for index in stride(from: 0, to: perThread * UInt64(threads), by: 4099) {
                let fixture = vms.fixture(forThread: Int(index / perThread))
                guard case .mapped(let translation) = try library("table", { () throws(SLATError) in try fixture.mmu.table() }).translate(fixture.address(ofFrame: index)),
                      translation.output.rawValue == (0x20_0000 &+ index) << 12 else {
                    throw .verification("tdp fault: frame \(index) not mapped to its host frame")
                }
            }
            if repeatIndex > 0 {
                samples.append(nanoseconds)
                cpuSamples.append(cpu)
            }
            for fixture in fixtures { fixture.mmu.teardown() }
        }
        let faults = Int(options.size >> 12) / options.threads * options.threads
        let lock = options.separateVMs ? "a VM each" : options.exclusiveLock ? "exclusive lock" : "shared lock"
        let name = "fault (\(options.threads) thread\(options.threads == 1 ? "" : "s"), \(lock))"
        var results = [
            TDPResult(name: name + " wall", operations: faults, unit: "fault", samples: samples, counters: counters),
            TDPResult(name: name + " thread CPU time, all threads", operations: faults, unit: "fault", samples: cpuSamples,
                      counters: counters),
        ]
        if options.threads == 1 && options.comparesResolve { results.append(try resolveOnly(options)) }
        return results
    }

    /// The host side alone: GuestMemory.resolve for every frame (memslot
    /// lookup, host page lookup, invalidation snapshot), single thread, CPU time.
    static func resolveOnly(_ options: TDPOptions) throws(BenchFailure) -> TDPResult {
        var samples: [UInt64] = []
        let fixture = try TDPFixture(format: options.format, size: options.size, hostSize: .size4K, threads: 1)
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

/// The VMs of one parallel fault run: one shared by every thread, or one
/// per thread. Read-only while the threads run.
final class FixtureList: Sendable {
    let fixtures: [TDPFixture]
    init(_ fixtures: [TDPFixture]) { self.fixtures = fixtures }

    /// The VM `thread` faults.
    func fixture(forThread thread: Int) -> TDPFixture {
        fixtures.count == 1 ? fixtures[0] : fixtures[thread]
    }
}
