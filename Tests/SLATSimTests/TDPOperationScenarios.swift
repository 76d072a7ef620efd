import SLATCore
import SLATSim
import SLATSplit
import SLATx86

/// More x86 TDP MMU scenarios: the fast page fault, aging, huge-page and NX
/// huge-page recovery, memslot removal and flag changes, each beside vCPU
/// accesses (Docs/x86-tdp-mmu.md).
extension TDPExplorationScenarios {
    static func write(_ frame: UInt64, vcpu: Int) -> ExplorationScenario<TDPDirtyLogWorld>.Step {
        .init("vCPU \(vcpu) write frame \(frame)") { world in
            let failure = world.vm.access(frame, .write, vcpu: vcpu)
            if failure == nil { world.written.insert(frame) }
            return failure
        }
    }

    static func access(_ frame: UInt64, _ kind: AccessKind, vcpu: Int) -> ExplorationScenario<VM>.Step {
        .init("vCPU \(vcpu) \(kind) frame \(frame)") { vm in vm.access(frame, kind, vcpu: vcpu) }
    }

    /// The oracle of the dirty-log scenarios: a final harvest, every write
    /// harvested, then the VM's own checks.
    static func completeness(_ world: TDPDirtyLogWorld) -> String? {
        do { try world.harvest() } catch { return "final harvest threw \(error)" }
        let missing = world.written.subtracting(world.harvested)
        if !missing.isEmpty { return "dirty log lost frames \(missing.sorted())" }
        return world.vm.check()
    }

    /// A write-protect dirty log: two vCPUs write pages the log protected,
    /// so each write is a permission fault the lockless fast page fault
    /// fixes (KVM's fast_page_fault), while a host thread harvests twice.
    /// Every write must be in a harvest.
    static func fastFaultsBesideHarvests() -> ExplorationScenario<TDPDirtyLogWorld> {
        typealias Step = ExplorationScenario<TDPDirtyLogWorld>.Step
        return withSequentialOracle(perEntry(ExplorationScenario(
            name: "x86: fast page faults (write-protect log) beside harvests",
            threads: [
                [write(1, vcpu: 0), write(2, vcpu: 0)],
                [write(2, vcpu: 1), write(5, vcpu: 1)],
                [Step("harvest") { world in
                    try world.harvest()
                    return nil
                }, Step("harvest again") { world in
                    try world.harvest()
                    return nil
                }],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler)
                for frame in 0..<vm.frames {
                    if let failure = vm.access(frame, .write, vcpu: 0) { throw SetupFailure(failure) }
                }
                try vm.mmu.enableDirtyLogging(memslot: 1, mode: .writeProtect)
                return TDPDirtyLogWorld(vm)
            },
            check: completeness)))
    }

    /// Aging (the host's clear-young, lockless, by compare-and-exchange of
    /// the accessed bit) beside vCPU writes with a dirty-bit log on: the
    /// accessed-bit clearing must never drop a dirty bit the hardware sets
    /// at the same time, so every write is harvested.
    static func agingBesideWrites() -> ExplorationScenario<TDPDirtyLogWorld> {
        typealias Step = ExplorationScenario<TDPDirtyLogWorld>.Step
        let hostRange = HostVirtualRange(start: VM.hostBase, size: 8 << 12)
        return withSequentialOracle(perEntry(ExplorationScenario(
            name: "x86: aging beside writes (dirty-bit log)",
            threads: [
                [Step("clear young") { world in
                    // Frames the vCPUs never touch were read at setup: young.
                    let young = try world.vm.mmu.clearYoung(hostRange, context: world.vm.contexts[2])
                    return young ? nil : "clear young found nothing young"
                }, Step("test young") { world in
                    _ = try world.vm.mmu.testYoung(hostRange, context: world.vm.contexts[2])
                    return nil
                }],
                [write(1, vcpu: 0), write(3, vcpu: 0)],
                [write(3, vcpu: 1)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler)
                for frame: UInt64 in 0..<8 {
                    if let failure = vm.access(frame, .read, vcpu: 0) { throw SetupFailure(failure) }
                }
                try vm.mmu.enableDirtyLogging(memslot: 1, mode: .dirtyBit)
                return TDPDirtyLogWorld(vm)
            },
            check: completeness)))
    }

    /// Huge-page recovery (small leaves collapsed into a 2 MiB leaf once
    /// dirty logging stopped) beside two vCPUs writing and reading inside
    /// and outside the collapsed range: every access completes on its own
    /// host page; the table it replaced is freed once, after the flush and
    /// the grace period, and never read after.
    static func hugePageRecoveryBesideAccesses() -> ExplorationScenario<VM> {
        typealias Step = ExplorationScenario<VM>.Step
        return perEntry(ExplorationScenario(
            name: "x86: huge-page recovery beside accesses",
            threads: [
                [Step("recover huge pages") { vm in
                    let recovered = try vm.mmu.recoverHugePages(in: vm.slotFrames)
                    // The only table of small leaves is collapsed, whatever the vCPUs do.
                    return recovered == 1 ? nil : "recovered \(recovered) huge pages, expected 1"
                }],
                [access(2, .write, vcpu: 0), access(300, .read, vcpu: 0)],
                [access(7, .write, vcpu: 1)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler, frames: 512, hugeBacking: true)
                // Logging maps by 4 KiB pages; stopping it leaves them small.
                try vm.mmu.enableDirtyLogging(memslot: 1, mode: .dirtyBit)
                for frame: UInt64 in [0, 2, 5, 7] {
                    if let failure = vm.access(frame, .write, vcpu: 0) { throw SetupFailure(failure) }
                }
                try vm.mmu.disableDirtyLogging(memslot: 1, recoverHugePages: false)
                return vm
            },
            check: { $0.check() }))
    }

    /// NX huge-page recovery (the iTLB-multihit mitigation: an instruction
    /// fetch split a 2 MiB leaf; recovery zaps the split table so a later
    /// fault can map the huge page again) beside a vCPU executing and
    /// writing inside the split range and another reading elsewhere.
    static func nxRecoveryBesideAccesses() -> ExplorationScenario<VM> {
        typealias Step = ExplorationScenario<VM>.Step
        return perEntry(ExplorationScenario(
            name: "x86: NX huge-page recovery beside accesses",
            threads: [
                [Step("recover NX huge pages") { vm in
                    let zapped = try vm.mmu.recoverNXHugePages()
                    // The split recorded at setup is zapped, whatever the vCPUs do.
                    return zapped == 1 ? nil : "recovery zapped \(zapped) splits, expected 1"
                }],
                [access(2, .executePrivileged, vcpu: 0), access(3, .write, vcpu: 0)],
                [access(400, .read, vcpu: 1)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler, frames: 512, hugeBacking: true, nxHugePages: true)
                if let failure = vm.access(0, .read, vcpu: 0) { throw SetupFailure(failure) }
                if let failure = vm.access(1, .executePrivileged, vcpu: 0) { throw SetupFailure(failure) }
                return vm
            },
            check: { $0.check() }))
    }

    /// NX huge-page recovery beside writes into an NX split of a memslot
    /// that logs dirty pages (dirty-bit mode): recovery must leave the split
    /// alone (or harvest its leaves), so every write is harvested.
    static func nxRecoveryBesideLoggedWrites() -> ExplorationScenario<TDPDirtyLogWorld> {
        typealias Step = ExplorationScenario<TDPDirtyLogWorld>.Step
        return perEntry(ExplorationScenario(
            name: "x86: NX huge-page recovery beside logged writes",
            threads: [
                [write(2, vcpu: 0), write(3, vcpu: 0)],
                [Step("recover NX huge pages") { world in
                    _ = try world.vm.mmu.recoverNXHugePages()
                    return nil
                }],
                [write(4, vcpu: 1)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler, frames: 512, hugeBacking: true, nxHugePages: true)
                // An instruction fetch splits the first 2 MiB; then logging starts.
                if let failure = vm.access(1, .executePrivileged, vcpu: 0) { throw SetupFailure(failure) }
                for frame: UInt64 in 2..<5 {
                    if let failure = vm.access(frame, .read, vcpu: 1) { throw SetupFailure(failure) }
                }
                try vm.mmu.enableDirtyLogging(memslot: 1, mode: .dirtyBit)
                return TDPDirtyLogWorld(vm)
            },
            check: completeness))
    }

    /// Eager splitting (SLATSplit's engine on the TDP MMU, shared lock: a
    /// 2 MiB leaf replaced by a table of 4 KiB leaves) of a leaf both vCPUs
    /// cached, beside a write and a read inside it: every access completes
    /// on its own host page, no stale entry, the pages accounted, and the
    /// translations those of a sequential order.
    static func eagerSplitBesideAccesses() -> ExplorationScenario<VM> {
        typealias Step = ExplorationScenario<VM>.Step
        return withSequentialOracle(perEntry(ExplorationScenario(
            name: "x86: eager split beside accesses",
            threads: [
                [Step("eager split of the memslot") { vm in
                    let engine = EagerSplitEngine(backend: vm.mmu, lock: vm.mmu.lock,
                                                  policy: EagerSplitPolicy(minimumFreePages: 4))
                    let report = try engine.split(frames: vm.slotFrames, context: vm.contexts[2])
                    // Nothing else splits or zaps the leaf: the split must happen.
                    return report.leavesSplit == 1 && report.isComplete ? nil : "eager split: \(report)"
                }],
                [access(3, .write, vcpu: 0)],
                [access(200, .read, vcpu: 1)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler, frames: 512, hugeBacking: true)
                // One fault maps the 2 MiB leaf; both vCPUs cache it.
                if let failure = vm.access(0, .read, vcpu: 0) { throw SetupFailure(failure) }
                if let failure = vm.access(1, .read, vcpu: 1) { throw SetupFailure(failure) }
                return vm
            },
            check: { $0.check() })))
    }

    /// The memslot is removed (a guest-memory change: the MMU zaps its
    /// frames) while two vCPUs fault in it: once the removal returned no
    /// access translates (each ends as an MMIO exit), and no leaf of the
    /// slot is left.
    static func memslotRemovalBesideFaults() -> ExplorationScenario<VM> {
        typealias Step = ExplorationScenario<VM>.Step
        return withSequentialOracle(perEntry(ExplorationScenario(
            name: "x86: memslot removal beside faults",
            threads: [
                [Step("remove the memslot") { vm in
                    try vm.removeMemslot()
                    return nil
                }],
                [access(3, .write, vcpu: 0), access(5, .read, vcpu: 0)],
                [access(1, .read, vcpu: 1), access(6, .write, vcpu: 1)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler)
                for frame: UInt64 in [1, 3] {
                    if let failure = vm.access(frame, .read, vcpu: 0) { throw SetupFailure(failure) }
                }
                return vm
            },
            check: { $0.check() })))
    }

    /// A second memslot is added while two vCPUs access its frames: before
    /// the add returns an access may end as an MMIO exit; once it returned
    /// every access finds the memslot and completes on its host page.
    static func memslotAddBesideAccesses() -> ExplorationScenario<VM> {
        typealias Step = ExplorationScenario<VM>.Step
        return perEntry(ExplorationScenario(
            name: "x86: memslot added beside accesses",
            threads: [
                [Step("add memslot 2") { vm in
                    try vm.addSecondMemslot(count: 8)
                    return nil
                }],
                [access(17, .read, vcpu: 0), access(18, .write, vcpu: 0)],
                [access(17, .write, vcpu: 1)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler)
                try vm.mapSecondMemslotHostPages(count: 8)
                if let failure = vm.access(1, .read, vcpu: 0) { throw SetupFailure(failure) }
                return vm
            },
            check: { vm in
                // Once added, every frame of the memslot is reachable.
                for frame: UInt64 in [17, 18] {
                    if let failure = vm.access(frame, .write, vcpu: 0) { return "after the add: \(failure)" }
                }
                return vm.check()
            }))
    }

    /// The memslot is made read-only while two vCPUs write and read it:
    /// once the change returned no write completes (each ends as an exit
    /// the VMM emulates), reads still do, and no writable leaf is left.
    static func memslotReadOnlyBesideWrites() -> ExplorationScenario<VM> {
        typealias Step = ExplorationScenario<VM>.Step
        return withSequentialOracle(perEntry(ExplorationScenario(
            name: "x86: memslot made read-only beside writes",
            threads: [
                [Step("make the memslot read-only") { vm in
                    try vm.makeMemslotReadOnly()
                    return nil
                }],
                [access(3, .write, vcpu: 0), access(5, .read, vcpu: 0)],
                [access(1, .write, vcpu: 1), access(3, .write, vcpu: 1)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler)
                for frame: UInt64 in [1, 3] {
                    if let failure = vm.access(frame, .write, vcpu: 0) { throw SetupFailure(failure) }
                }
                return vm
            },
            check: { $0.check() })))
    }
}
