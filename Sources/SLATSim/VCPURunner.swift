import Foundation
import SLATCore
import Synchronization

/// What a fault handler tells the vCPU to do next.
@frozen
public enum FaultResolution: Sendable {
    /// Access the same address again (the handler fixed the tables).
    case retry
    /// Give up on this access and go on with the next.
    case skip
    /// Stop this run on every vCPU.
    case stop
}

/// What one vCPU thread did in a run.
@frozen
public struct VCPUCounters: Hashable, Sendable {
    /// The vCPU.
    public var vcpu: Int = 0
    /// Accesses made (each counted once, however often retried).
    public var accesses: Int = 0
    /// Violations raised (each given to the fault handler).
    public var faults: Int = 0
    /// Accesses repeated after the handler asked for a retry.
    public var retries: Int = 0
    /// Accesses abandoned (skipped, or still faulting after the retry limit).
    public var abandoned: Int = 0
    /// Attempts served by the TLB.
    public var tlbHits: Int = 0
    /// Attempts that walked the tables.
    public var tlbMisses: Int = 0
    /// Attempts that immediately followed another vCPU's attempt (counted
    /// only when the run tracks interleaving): evidence the threads overlapped.
    public var interleavings: Int = 0
    /// Monotonic clock (ns) when the thread passed the start barrier.
    public var startNanoseconds: UInt64 = 0
    /// Monotonic clock (ns) when it finished.
    public var endNanoseconds: UInt64 = 0

    /// All zero.
    @inlinable public init() {}
}

/// The outcome of a run.
public struct VCPURunResult: Hashable, Sendable {
    /// The seed the access streams came from (print it on failure).
    public var seed: UInt64
    /// Per-vCPU counters, indexed by vCPU.
    public var vcpus: [VCPUCounters]
    /// Whether a fault handler stopped the run.
    public var stopped: Bool

    /// A result.
    public init(seed: UInt64, vcpus: [VCPUCounters], stopped: Bool) {
        self.seed = seed
        self.vcpus = vcpus
        self.stopped = stopped
    }

    /// The sum over vCPUs.
    public var total: VCPUCounters {
        var sum = VCPUCounters()
        sum.vcpu = -1
        for counters in vcpus {
            sum.accesses += counters.accesses
            sum.faults += counters.faults
            sum.retries += counters.retries
            sum.abandoned += counters.abandoned
            sum.tlbHits += counters.tlbHits
            sum.tlbMisses += counters.tlbMisses
            sum.interleavings += counters.interleavings
        }
        sum.startNanoseconds = vcpus.map(\.startNanoseconds).min() ?? 0
        sum.endNanoseconds = vcpus.map(\.endNanoseconds).max() ?? 0
        return sum
    }

    /// Wall time from the first thread's start to the last one's end.
    public var elapsedNanoseconds: UInt64 { total.endNanoseconds &- total.startNanoseconds }
}

/// Runs simulated vCPUs as real threads: each makes the accesses of an
/// ``AccessStream`` through its own ``SimulatedTLB`` with the
/// ``HardwareWalker``, calls the fault handler on every violation and
/// retries as it says.
///
/// Threads start together (a barrier), so they overlap; streams are
/// deterministic from the seed (the interleaving of course is not).
/// The per-access path allocates nothing: the cursor and counters are
/// thread-local values.
///
/// Thread safety: ``run(_:seed:maximumRetries:tracksInterleaving:faultHandler:)``
/// may be called from any thread, one run at a time per runner (vCPU
/// TLBs are shared state). The fault handler is called on the vCPU's thread,
/// concurrently with other vCPUs' handlers: it must do its own locking
/// (typically the MMU lock shared, as KVM's fault path).
public final class VCPURunner<Format: PageTableFormat, Memory: TableMemory>: Sendable {
    /// Walks the tables.
    public let walker: HardwareWalker<Format, Memory>
    /// The vCPU TLBs (one thread per vCPU).
    public let tlb: SimulatedContextTLB

    /// A runner with one thread per vCPU of `tlb`.
    public init(walker: HardwareWalker<Format, Memory>, tlb: SimulatedContextTLB) {
        self.walker = walker
        self.tlb = tlb
    }

    /// vCPU threads a run starts.
    public var vcpuCount: Int { tlb.vcpus.count }

    /// Runs `stream` on every vCPU and returns when all threads are done.
    ///
    /// - Parameters:
    ///   - stream: what each vCPU accesses.
    ///   - seed: the streams' seed (vCPU *i* uses a seed derived from it).
    ///   - maximumRetries: retries of one access before it is abandoned.
    ///   - tracksInterleaving: count ``VCPUCounters/interleavings`` (one
    ///     shared atomic exchange per access: leave off for benchmarks).
    ///   - faultHandler: called with the vCPU and the violation.
    @inlinable
    public func run(
        _ stream: AccessStream, seed: UInt64, maximumRetries: Int = 16, tracksInterleaving: Bool = false,
        faultHandler: @escaping @Sendable (_ vcpu: Int, _ violation: Violation) -> FaultResolution
    ) -> VCPURunResult {
        let count = vcpuCount
        let shared = RunShared(vcpuCount: count)
        let done = DispatchGroup()
        for vcpu in 0..<count {
            done.enter()
            let thread = Thread { [self] in
                let counters = self.runVCPU(vcpu, stream: stream, seed: seed, maximumRetries: maximumRetries,
                                            tracksInterleaving: tracksInterleaving, shared: shared, faultHandler: faultHandler)
                shared.results.withLock { $0[vcpu] = counters }
                done.leave()
            }
            thread.name = "SLATSim vCPU \(vcpu)"
            thread.start()
        }
        done.wait()
        return VCPURunResult(seed: seed, vcpus: shared.results.withLock { $0 }, stopped: shared.stop.load(ordering: .relaxed))
    }

    @inlinable
    func runVCPU(
        _ vcpu: Int, stream: AccessStream, seed: UInt64, maximumRetries: Int, tracksInterleaving: Bool,
        shared: RunShared, faultHandler: @Sendable (Int, Violation) -> FaultResolution
    ) -> VCPUCounters {
        var counters = VCPUCounters()
        counters.vcpu = vcpu
        var cursor = AccessStreamCursor(stream: stream, vcpu: vcpu, vcpuCount: vcpuCount, seed: seed)
        let myTLB = tlb.vcpu(vcpu)
        // Start barrier: every thread arrives before any accesses.
        shared.arrived.wrappingAdd(1, ordering: .acquiringAndReleasing)
        while shared.arrived.load(ordering: .acquiring) < vcpuCount { sched_yield() }
        counters.startNanoseconds = DispatchTime.now().uptimeNanoseconds
        accesses: for _ in 0..<stream.accessesPerVCPU {
            if shared.stop.load(ordering: .relaxed) { break }
            let (address, kind) = cursor.next()
            counters.accesses &+= 1
            var attempt = 0
            while true {
                if tracksInterleaving {
                    let previous = shared.lastVCPU.exchange(vcpu, ordering: .relaxed)
                    if previous != vcpu && previous >= 0 { counters.interleavings &+= 1 }
                }
                switch walker.access(address, kind, through: myTLB) {
                case .translated(_, let hit):
                    if hit { counters.tlbHits &+= 1 } else { counters.tlbMisses &+= 1 }
                    continue accesses
                case .violation(let violation):
                    counters.tlbMisses &+= 1
                    counters.faults &+= 1
                    switch faultHandler(vcpu, violation) {
                    case .retry where attempt < maximumRetries:
                        attempt &+= 1
                        counters.retries &+= 1
                    case .retry, .skip:
                        counters.abandoned &+= 1
                        continue accesses
                    case .stop:
                        counters.abandoned &+= 1
                        shared.stop.store(true, ordering: .relaxed)
                        break accesses
                    }
                }
            }
        }
        counters.endNanoseconds = DispatchTime.now().uptimeNanoseconds
        return counters
    }
}

/// State the threads of one run share.
@usableFromInline
final class RunShared: Sendable {
    @usableFromInline let arrived = Atomic<Int>(0)
    @usableFromInline let stop = Atomic<Bool>(false)
    @usableFromInline let lastVCPU = Atomic<Int>(-1)
    @usableFromInline let results: PThreadLocked<[VCPUCounters]>

    @usableFromInline
    init(vcpuCount: Int) {
        results = PThreadLocked(Array(repeating: VCPUCounters(), count: vcpuCount))
    }
}
