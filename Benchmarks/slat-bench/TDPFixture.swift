import Foundation
import SLAT
import SLATx86
import Synchronization

/// A VM for the TDP workloads on `format`: one memslot of the bench size at guest
/// 4 GiB backed by host pages of `hostSize`, an arena, a counting TLB and
/// an EPT MMU with one vCPU context per thread.
// @unchecked Sendable: immutable after init; each thread uses only its own
// context (`contexts[thread]`), everything else is Sendable.
final class TDPFixture: @unchecked Sendable {
    let format: ExtendedPageTableFormat
    let guestMemory: GuestMemory
    let arena: TableArena
    let tlb = CountingTLB()
    let mmu: ExtendedPageTableMMU<TableArena, CountingTLB>
    let contexts: [PageTableContext]
    let baseFrame = GuestFrameNumber(0x10_0000)
    let frameCount: UInt64
    static let memslotID: UInt32 = 1
    static let hostBase = HostVirtualAddress(0x7f00_0000_0000)

    init(format: ExtendedPageTableFormat, size: UInt64, hostSize: HostMappingSize, threads: Int,
         exclusiveFaults: Bool = false) throws(BenchFailure) {
        self.format = format
        do throws(SLATError) {
            frameCount = size >> 12
            guestMemory = GuestMemory()
            try guestMemory.hostPages.map(Self.hostBase, to: HostFrameNumber(0x20_0000), size: hostSize,
                                          count: size >> hostSize.shift)
            try guestMemory.addMemslot(Memslot(id: Self.memslotID, baseFrame: baseFrame, pageCount: frameCount,
                                               hostAddress: Self.hostBase))
            // Tables for 4 KiB leaves plus splits, caches and slack.
            arena = try TableArena(pageCount: Int(size >> 21) * 2 + 64 * threads + 64)
            mmu = try ExtendedPageTableMMU(
                format: format, memory: arena, tlb: tlb, guestMemory: guestMemory,
                configuration: MMUConfiguration(readerSlots: max(threads, 2), faultsTakeLockExclusively: exclusiveFaults))
            contexts = (0..<max(threads, 2)).map { PageTableContext(readerSlot: $0) }
        } catch {
            throw .library("tdp fixture", error)
        }
    }

    /// The TLB's and arena's running totals, for ``OperationCounters``.
    func snapshot() -> CounterSnapshot { CounterSnapshot(tlb: tlb, arena: arena) }

    /// The guest address of frame `index` of the memslot.
    @inline(__always)
    func address(ofFrame index: UInt64) -> GuestPhysicalAddress {
        GuestPhysicalAddress((baseFrame.rawValue &+ index) << 12)
    }

    /// The whole memslot's frames.
    var frames: GuestFrameRange { GuestFrameRange(start: baseFrame, count: frameCount) }

    /// Faults frames `range` (indices) in with `access`, retrying; returns
    /// the number of faults handled.
    @inline(__always)
    func fault(_ range: Range<UInt64>, access: GuestAccess, permission: Bool = false, step: UInt64 = 1,
               vcpu: PageTableContext) throws(BenchFailure) {
        var index = range.lowerBound
        while index < range.upperBound {
            let fault = GuestPageFault(address: address(ofFrame: index), access: access, isPermissionFault: permission)
            do throws(SLATError) {
                while case .retry = try mmu.handleFault(fault, vcpu: vcpu) {}
            } catch {
                throw .library("tdp fault", error)
            }
            index &+= step
        }
    }

    /// Runs `body(thread)` on `count` threads started together; returns the
    /// wall-clock nanoseconds from the common start to the last finish and
    /// the CPU nanoseconds the threads used together (CLOCK_THREAD_CPUTIME_ID:
    /// time spent waiting for a CPU on a loaded machine is not in it).
    static func parallel(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) -> (wall: UInt64, cpu: UInt64) {
        if count == 1 {
            let start = MonotonicClock.now()
            let cpuStart = threadCPUTime()
            body(0)
            let cpu = threadCPUTime() &- cpuStart
            return (MonotonicClock.now() &- start, cpu)
        }
        let gate = StartGate()
        let done = DispatchGroup()
        for thread in 0..<count {
            done.enter()
            let worker = Thread {
                // The last thread to arrive opens the gate and starts the
                // clock; the caller sleeps meanwhile. (When the caller spun
                // for the arrivals it held one of this machine's 2 CPUs, and
                // a worker it had displaced often started a 4 ms scheduler
                // tick late: the threads then ran one after the other.)
                if gate.arrived.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == count {
                    gate.start.store(Int(MonotonicClock.now()), ordering: .relaxed)
                    gate.open.store(true, ordering: .releasing)
                } else {
                    while !gate.open.load(ordering: .acquiring) {}
                }
                let cpuStart = threadCPUTime()
                body(thread)
                gate.cpu.wrappingAdd(Int(threadCPUTime() &- cpuStart), ordering: .relaxed)
                gate.end.max(Int(MonotonicClock.now()), ordering: .relaxed)
                done.leave()
            }
            worker.start()
        }
        done.wait()
        let wall = UInt64(gate.end.load(ordering: .relaxed) &- gate.start.load(ordering: .relaxed))
        return (wall, UInt64(gate.cpu.load(ordering: .relaxed)))
    }

    /// CPU time of the calling thread in nanoseconds.
    static func threadCPUTime() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}

/// The start line of ``TDPFixture/parallel(_:_:)``.
final class StartGate: Sendable {
    let arrived = Atomic<Int>(0)
    let open = Atomic<Bool>(false)
    let cpu = Atomic<Int>(0)
    /// When the gate opened and when the last thread finished (monotonic ns).
    let start = Atomic<Int>(0)
    let end = Atomic<Int>(0)
}
