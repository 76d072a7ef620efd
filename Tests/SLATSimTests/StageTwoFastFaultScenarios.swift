import SLATArm64
import SLATCore
import SLATSim

/// Stage-2 scenarios for the fast permission fault (Docs/stage2-mmu.md,
/// "The fast permission fault"): vCPUs' writes to pages write-protected
/// for dirty logging are fixed without the MMU lock, beside the host
/// operations that change the same leaves under it.
enum StageTwoFastFaultScenarios {
    typealias VM = StageTwoExplorationVM
    typealias Step = ExplorationScenario<VM>.Step

    /// Two vCPUs and a host thread over 4 KiB host pages, the notifier
    /// bound, pages 1 and 3 written (mapped by 4 KiB leaves), then dirty
    /// logging enabled, which write-protects them for the fast path.
    static func loggingWorld(_ scheduler: ControlledScheduler) throws -> VM {
        let vm = try VM(scheduler, vcpus: 2, hostThreads: 1, hostMappingSize: .size4K)
        vm.bindNotifier()
        for page: UInt64 in [1, 3] {
            if let failure = vm.access(page: page, .write, vcpu: 0) { throw SetupFailure(failure) }
        }
        try vm.mmu.enableDirtyLogging(memslot: 1, guestMemory: vm.guestMemory, lock: vm.lock,
                                      context: vm.contexts[2])
        return vm
    }

    /// Dirty logging on, pages 1 and 3 mapped by 4 KiB leaves and
    /// write-protected for it; a host thread makes the memslot read-only
    /// (the notifier zaps its range) while vCPU 0 reads page 5 and writes
    /// it and page 3, and vCPU 1 writes pages 1 and 3. Once the change
    /// returned no write completes and no writable leaf is left: the fast
    /// path's exchange fails against the zap, and a leaf mapped read-only
    /// for the read-only memslot has no MMU-writable bit to restore.
    static func memslotReadOnlyBesideFastFaults() -> ExplorationScenario<VM> {
        perEntry(ExplorationScenario(
            name: "stage 2: fast permission faults beside a memslot made read-only (dirty logging on)",
            threads: [
                [Step("make the memslot read-only") { vm in
                    try vm.makeMemslotReadOnly()
                    return nil
                }],
                [StageTwoExplorationScenarios.access(5, .read, vcpu: 0),
                 StageTwoExplorationScenarios.access(5, .write, vcpu: 0),
                 StageTwoExplorationScenarios.access(3, .write, vcpu: 0)],
                [StageTwoExplorationScenarios.access(1, .write, vcpu: 1),
                 StageTwoExplorationScenarios.access(3, .write, vcpu: 1)],
            ],
            makeWorld: loggingWorld,
            check: { $0.check() }))
    }

    /// Dirty logging on, pages 1 and 3 mapped by 4 KiB leaves and
    /// write-protected for it; a host thread write-protects the host page
    /// behind page 3 (the notifier zaps that one leaf, its table stays)
    /// while both vCPUs write page 3. A write whose fault finds the host
    /// page read-only is an error the VMM handles (it ends the access); at
    /// the end no leaf may be writable over a read-only host page: the fast
    /// path's exchange fails against the zap, where a plain store would
    /// bring the writable leaf back.
    static func hostProtectBesideFastFaults() -> ExplorationScenario<VM> {
        let write = { (vcpu: Int) in
            Step("vCPU \(vcpu) write page 3") { vm in
                guard let failure = vm.access(page: 3, .write, vcpu: vcpu) else { return nil }
                return failure.contains("threw the host maps") && failure.contains("read-only") ? nil : failure
            }
        }
        return perEntry(ExplorationScenario(
            name: "stage 2: fast permission faults beside a host write-protect (dirty logging on)",
            threads: [
                [Step("write-protect the host page of page 3") { vm in
                    try vm.guestMemory.hostPages.protect(
                        HostVirtualRange(start: HostVirtualAddress(VM.hostVirtualBase + 3 * VM.page), size: VM.page),
                        writable: false)
                    return nil
                }],
                [write(0)],
                [write(1)],
            ],
            makeWorld: loggingWorld,
            check: { vm in
                for leaf in vm.mmu.table.leaves(in: vm.guestRange) where leaf.attributes.permissions.contains(.write) {
                    let host = HostVirtualAddress(VM.hostVirtualBase + (leaf.guestAddress.rawValue - VM.guestBase))
                    if vm.guestMemory.hostPages.lookup(host)?.writable != true {
                        return "leaf at \(leaf.guestAddress) writable over a read-only host page"
                    }
                }
                return vm.check()
            }))
    }

    /// The harvest scenario (`dirtyLogHarvestBesideWrites`: every write
    /// reaches a harvest) with one scheduling step per table-entry access,
    /// so a vCPU's fast fault may run between a harvest's read of a leaf
    /// and its write.
    static func harvestBesideFastFaults() -> ExplorationScenario<DirtyLogWorld> {
        var scenario = perEntry(StageTwoExplorationScenarios.dirtyLogHarvestBesideWrites())
        scenario.name += ", per-entry steps"
        return scenario
    }
}
