import SLATCore
import SLATSim
import SLATx86

/// x86 TDP MMU scenarios for the explorer, through `ExtendedPageTableMMU`'s
/// public API (Docs/x86-tdp-mmu.md).
enum TDPExplorationScenarios {
    typealias VM = TDPExplorationVM

    /// Dirty logging on (in `mode`), two vCPUs write while a host thread
    /// harvests and zaps part of the memslot (the zap yields the lock every
    /// two leaves). Every page written must appear in a harvest
    /// (dirty-log completeness); the final harvest is taken after the
    /// threads.
    static func dirtyLogBesideZap(mode: DirtyLogMode) -> ExplorationScenario<TDPDirtyLogWorld> {
        typealias Step = ExplorationScenario<TDPDirtyLogWorld>.Step
        let write = { (frame: UInt64, vcpu: Int) in
            Step("vCPU \(vcpu) write frame \(frame)") { world in
                let failure = world.vm.access(frame, .write, vcpu: vcpu)
                if failure == nil { world.written.insert(frame) }
                return failure
            }
        }
        return ExplorationScenario(
            name: "x86: dirty log (\(mode)) beside a zap",
            threads: [
                [write(1, 0), write(4, 0)],
                [write(5, 1), write(2, 1)],
                [Step("harvest") { world in
                    try world.harvest()
                    return nil
                }, Step("zap frames 0..<8") { world in
                    _ = try world.vm.mmu.zap(GuestFrameRange(start: GuestFrameNumber(VM.baseFrame), count: 8))
                    return nil
                }],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler)
                // Every frame mapped and written once before logging starts.
                for frame in 0..<vm.frames {
                    if let failure = vm.access(frame, .write, vcpu: 0) { throw SetupFailure(failure) }
                }
                try vm.mmu.enableDirtyLogging(memslot: 1, mode: mode)
                return TDPDirtyLogWorld(vm)
            },
            check: { world in
                do { try world.harvest() } catch { return "final harvest threw \(error)" }
                let missing = world.written.subtracting(world.harvested)
                if !missing.isEmpty { return "dirty log lost frames \(missing.sorted())" }
                return world.vm.check()
            })
        // No sequential-order oracle: the zap yields the lock every two
        // leaves, so it is not one atomic operation (a write can fault a
        // leaf back behind its cursor while it removes later ones).
    }

    /// The host remaps a frame's page (mmu-notifier start/end) while two
    /// vCPUs fault on it and a neighbour: no vCPU may reach the old host
    /// page once the remap returned, and the tables end mapping the new one.
    static func faultsBesideNotifier() -> ExplorationScenario<VM> {
        typealias Step = ExplorationScenario<VM>.Step
        var scenario = ExplorationScenario(
            name: "x86: faults beside an mmu-notifier remap",
            threads: [
                [Step("remap frame 3") { vm in
                    try vm.remap(3)
                    return nil
                }],
                [Step("vCPU 0 read frame 3") { $0.access(3, .read, vcpu: 0) },
                 Step("vCPU 0 write frame 3") { $0.access(3, .write, vcpu: 0) }],
                [Step("vCPU 1 write frame 3") { $0.access(3, .write, vcpu: 1) },
                 Step("vCPU 1 read frame 2") { $0.access(2, .read, vcpu: 1) }],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler)
                if let failure = vm.access(3, .read, vcpu: 0) { throw SetupFailure(failure) }
                return vm
            },
            check: { $0.check() })
        scenario.sequentialOracle = sequentialOracle()
        return scenario
    }
}

extension TDPExplorationScenarios {
    /// The VM is torn down while the host remaps a page (notifier delivery)
    /// and two vCPUs fault: every table page freed exactly once, none read
    /// after it was freed, no translation left cached.
    static func teardownBesideNotifierAndFaults() -> ExplorationScenario<VM> {
        typealias Step = ExplorationScenario<VM>.Step
        return ExplorationScenario(
            name: "x86: teardown beside a notifier and faults",
            threads: [
                [Step("remap frame 3") { vm in
                    try vm.remap(3)
                    return nil
                }],
                [Step("vCPU 0 write frame 3") { $0.access(3, .write, vcpu: 0) },
                 Step("vCPU 0 read frame 9") { $0.access(9, .read, vcpu: 0) }],
                [Step("vCPU 1 write frame 2") { $0.access(2, .write, vcpu: 1) },
                 Step("teardown") { vm in
                    vm.teardown()
                    return nil
                }],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler)
                for frame: UInt64 in [1, 3, 8] {
                    if let failure = vm.access(frame, .read, vcpu: 0) { throw SetupFailure(failure) }
                }
                return vm
            },
            check: { vm in vm.tornDown ? vm.checkTornDown() : vm.check() })
    }
}

extension TDPExplorationScenarios {
    /// Memslot 1, logging dirty pages, is removed and added again under the
    /// same id at other guest frames (the VM's frames 16..<32, backed by the
    /// host pages after its own), then its dirty-bit log is enabled, while
    /// a vCPU writes two of the new frames: every write made after the
    /// enable returned is in a harvest of memslot 1 (dirty-log
    /// completeness), so the removed memslot's log must not survive it.
    static func readdedMemslotBesideWrites() -> ExplorationScenario<TDPDirtyLogWorld> {
        typealias Step = ExplorationScenario<TDPDirtyLogWorld>.Step
        let write = { (frame: UInt64) in
            Step("vCPU 0 write frame \(frame)") { world in
                let logging = world.loggingEnabled
                let failure = world.vm.access(frame, .write, vcpu: 0)
                if failure == nil && logging { world.written.insert(frame) }
                return failure
            }
        }
        return ExplorationScenario(
            name: "x86: memslot added again elsewhere beside writes, its dirty log enabled",
            threads: [
                [Step("remove memslot 1") { world in
                    world.vm.scheduler.yield(at: .memslot)
                    _ = try world.vm.guestMemory.removeMemslot(id: 1)
                    return nil
                }, Step("add memslot 1 at frames 16..<32") { world in
                    world.vm.scheduler.yield(at: .memslot)
                    // Shrinking may have removed the removal: nothing to add then.
                    guard world.vm.guestMemory.memslot(id: 1) == nil else { return nil }
                    let base = TDPExplorationVM.baseFrame + 16
                    try world.vm.guestMemory.addMemslot(Memslot(
                        id: 1, baseFrame: GuestFrameNumber(base), pageCount: 16,
                        hostAddress: TDPExplorationVM.hostBase.advanced(by: 16 << 12)))
                    world.logFirstFrame = 16
                    world.vm.secondMemslotAdded = true
                    return nil
                }, Step("enable dirty logging (dirty bit)") { world in
                    guard world.logFirstFrame == 16 else { return nil }
                    try world.vm.mmu.enableDirtyLogging(memslot: 1, mode: .dirtyBit)
                    world.loggingEnabled = true
                    return nil
                }],
                [write(16), write(17)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler)
                try vm.mapSecondMemslotHostPages(count: 16)
                try vm.mmu.enableDirtyLogging(memslot: 1, mode: .dirtyBit)
                let world = TDPDirtyLogWorld(vm)
                world.loggingEnabled = false
                return world
            },
            check: { world in
                // Without the enable (shrinking removes it) nothing is owed to a log.
                guard world.loggingEnabled else { return world.vm.check() }
                do { try world.harvest() } catch { return "final harvest threw \(error)" }
                let missing = world.written.subtracting(world.harvested)
                if !missing.isEmpty { return "dirty log lost frames \(missing.sorted())" }
                return world.vm.check()
            })
    }

    /// A zap that yields the lock every two leaves, beside a dirty-bit log
    /// being enabled and a vCPU writing once it is: every write made after
    /// the enable returned must be harvested, also from leaves the zap
    /// removes after its yield.
    static func enableBesideYieldingZap() -> ExplorationScenario<TDPDirtyLogWorld> {
        typealias Step = ExplorationScenario<TDPDirtyLogWorld>.Step
        let write = { (frame: UInt64) in
            Step("vCPU 0 write frame \(frame)") { world in
                let logging = world.loggingEnabled
                let failure = world.vm.access(frame, .write, vcpu: 0)
                if failure == nil && logging { world.written.insert(frame) }
                return failure
            }
        }
        return ExplorationScenario(
            name: "x86: dirty-bit log enabled beside a yielding zap",
            threads: [
                [Step("zap frames 0..<8") { world in
                    _ = try world.vm.mmu.zap(GuestFrameRange(start: GuestFrameNumber(VM.baseFrame), count: 8))
                    return nil
                }],
                [Step("enable dirty logging (dirty bit)") { world in
                    try world.vm.mmu.enableDirtyLogging(memslot: 1, mode: .dirtyBit)
                    world.loggingEnabled = true
                    return nil
                }],
                [write(6), write(7)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler)
                for frame in 0..<vm.frames {
                    if let failure = vm.access(frame, .write, vcpu: 0) { throw SetupFailure(failure) }
                }
                let world = TDPDirtyLogWorld(vm)
                world.loggingEnabled = false
                return world
            },
            check: { world in
                // Without the enable (shrinking removes it) nothing is owed to a log.
                guard world.loggingEnabled else { return world.vm.check() }
                do { try world.harvest() } catch { return "final harvest threw \(error)" }
                let missing = world.written.subtracting(world.harvested)
                if !missing.isEmpty { return "dirty log lost frames \(missing.sorted())" }
                return world.vm.check()
            })
    }

    /// All roots replaced while a vCPU still runs on the old one, the host
    /// remaps a page (mmu-notifier) and the replaced roots are zapped once
    /// unused: no vCPU reaches the old host page after the remap returned,
    /// whichever root it walks; with a dirty-bit log on, no write is lost,
    /// also when a vCPU wrote through the old root before it reloaded and
    /// the old root is zapped before the harvest.
    static func rootInvalidationBesideNotifier() -> ExplorationScenario<TDPDirtyLogWorld> {
        typealias Step = ExplorationScenario<TDPDirtyLogWorld>.Step
        let access = { (frame: UInt64, kind: AccessKind, vcpu: Int) in
            Step("vCPU \(vcpu) \(kind) frame \(frame)") { world in
                let failure = world.vm.access(frame, kind, vcpu: vcpu)
                if failure == nil && kind == .write { world.written.insert(frame) }
                return failure
            }
        }
        return ExplorationScenario(
            name: "x86: root invalidation beside a notifier remap",
            threads: [
                [Step("invalidate all roots") { world in
                    try world.vm.mmu.invalidateAllRoots()
                    return nil
                }, Step("remap frame 5") { world in
                    try world.vm.remap(5)
                    return nil
                }, Step("zap unused replaced roots") { world in
                    _ = try world.vm.mmu.zapInvalidatedRoots()
                    return nil
                }],
                [access(5, .read, 1), access(6, .write, 1), access(1, .read, 1)],
                [access(3, .write, 0), access(2, .read, 0)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler)
                // Both vCPUs on the first root, frames 0..<8 mapped.
                for frame: UInt64 in 0..<8 {
                    if let failure = vm.access(frame, .read, vcpu: Int(frame % 2)) { throw SetupFailure(failure) }
                }
                try vm.mmu.enableDirtyLogging(memslot: 1, mode: .dirtyBit)
                return TDPDirtyLogWorld(vm)
            },
            check: { world in
                do { try world.harvest() } catch { return "final harvest threw \(error)" }
                let missing = world.written.subtracting(world.harvested)
                if !missing.isEmpty { return "dirty log lost frames \(missing.sorted())" }
                return world.vm.check()
            })
    }
}

extension TDPExplorationScenarios {
    /// A dirty-bit log on, a vCPU writing through the current root while
    /// all roots are replaced, both vCPUs reloading, and the replaced roots
    /// zapped once unused: the write must still reach a harvest.
    static func replacedRootZapBesideWrites() -> ExplorationScenario<TDPDirtyLogWorld> {
        typealias Step = ExplorationScenario<TDPDirtyLogWorld>.Step
        let access = { (frame: UInt64, kind: AccessKind, vcpu: Int) in
            Step("vCPU \(vcpu) \(kind) frame \(frame)") { world in
                let failure = world.vm.access(frame, kind, vcpu: vcpu)
                if failure == nil && kind == .write { world.written.insert(frame) }
                return failure
            }
        }
        return ExplorationScenario(
            name: "x86: replaced roots zapped beside writes",
            threads: [
                [Step("invalidate all roots") { world in
                    try world.vm.mmu.invalidateAllRoots()
                    return nil
                }, Step("zap unused replaced roots") { world in
                    _ = try world.vm.mmu.zapInvalidatedRoots()
                    return nil
                }],
                [access(6, .write, 1), access(1, .read, 1)],
                [access(2, .read, 0)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler)
                for frame: UInt64 in 0..<8 {
                    if let failure = vm.access(frame, .read, vcpu: Int(frame % 2)) { throw SetupFailure(failure) }
                }
                try vm.mmu.enableDirtyLogging(memslot: 1, mode: .dirtyBit)
                return TDPDirtyLogWorld(vm)
            },
            check: { world in
                do { try world.harvest() } catch { return "final harvest threw \(error)" }
                let missing = world.written.subtracting(world.harvested)
                if !missing.isEmpty { return "dirty log lost frames \(missing.sorted())" }
                return world.vm.check()
            })
    }
}

/// An x86 VM with its dirty-log bookkeeping.
// @unchecked Sendable: as TDPExplorationVM.
final class TDPDirtyLogWorld: @unchecked Sendable {
    let vm: TDPExplorationVM
    var written: Set<UInt64> = []
    var harvested: Set<UInt64> = []
    /// Whether enabling the log returned (writes count only after it).
    var loggingEnabled = true
    /// The VM frame index of memslot 1's first frame (bit 0 of its log).
    var logFirstFrame: UInt64 = 0
    init(_ vm: TDPExplorationVM) { self.vm = vm }

    /// The VM's table summary.
    func tableSummary() -> String { vm.tableSummary() }

    func harvest() throws {
        let words = try vm.mmu.getAndClearDirtyLog(memslot: 1)
        for (index, word) in words.enumerated() {
            for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 { harvested.insert(logFirstFrame + UInt64(index * 64 + bit)) }
        }
    }
}
