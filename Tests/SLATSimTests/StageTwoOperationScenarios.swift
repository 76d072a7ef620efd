import SLATArm64
import SLATCore
import SLATSim

/// More stage-2 scenarios: eager splitting, aging and memslot changes
/// beside vCPU accesses (Docs/stage2-mmu.md).
extension StageTwoExplorationScenarios {
    /// Eager splitting (a shared-mode walk that replaces each 2 MiB block
    /// by a table of pages, break-before-make) of a block two vCPUs use:
    /// one writes inside it, one had cached it and reads elsewhere in it.
    /// Every access completes on its own page; no TLB conflict, no stale
    /// entry; the pages stay accounted.
    static func eagerSplitBesideAccesses() -> ExplorationScenario<VM> {
        withSequentialOracle(perEntry(ExplorationScenario(
            name: "stage 2: eager split beside accesses",
            threads: [
                [Step("split the 2 MiB block") { vm in
                    let context = vm.contexts[2]
                    var range = vm.guestRange
                    var split = 0
                    while true {
                        let progress = try vm.lock.withShared { () throws(SLATError) in
                            try vm.mmu.splitBlocks(in: range, mode: .shared, context: context)
                        }
                        split += progress.blocksSplit
                        // The block is split, whatever the vCPUs do.
                        guard let resume = progress.resumeAddress else { return split == 1 ? nil : "split \(split) blocks" }
                        try context.pageCache.topUp(from: vm.mmu.table.memory, toAtLeast: progress.pagesWanted)
                        range = try GuestPhysicalRange(start: resume, end: vm.guestRange.end)
                    }
                }],
                [access(3, .write, vcpu: 0)],
                [access(200, .read, vcpu: 1)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler, vcpus: 2, hostThreads: 1)
                // One fault maps the whole 2 MiB block; both vCPUs cache it.
                if let failure = vm.access(page: 0, .read, vcpu: 0) { throw SetupFailure(failure) }
                if let failure = vm.access(page: 1, .read, vcpu: 1) { throw SetupFailure(failure) }
                return vm
            },
            check: { $0.check() })))
    }

    /// Aging: the host clears the access flags of a paged range (under the
    /// MMU lock, exclusive) while two vCPUs read and write it; every access
    /// completes on its own page (an access-flag fault is fixed by the
    /// fault handler), nothing stale is left cached.
    static func agingBesideAccesses() -> ExplorationScenario<VM> {
        withSequentialOracle(perEntry(ExplorationScenario(
            name: "stage 2: aging beside accesses",
            threads: [
                [Step("test and clear young") { vm in
                    let range = GuestPhysicalRange(start: vm.address(page: 0), size: 8 * VM.page)
                    _ = try vm.lock.withExclusive { () throws(SLATError) in
                        try vm.mmu.testAndClearYoung(range, mode: .exclusive, context: vm.contexts[2])
                    }
                    return nil
                }],
                [access(1, .write, vcpu: 0), access(2, .read, vcpu: 0)],
                [access(2, .write, vcpu: 1)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler, vcpus: 2, hostThreads: 1)
                try vm.mapPages(0..<8, context: 2)
                for page: UInt64 in 0..<4 {
                    if let failure = vm.access(page: page, .read, vcpu: Int(page % 2)) { throw SetupFailure(failure) }
                }
                return vm
            },
            check: { $0.check() })))
    }

    /// The memslot is removed (the notifier binding zaps its range under
    /// the exclusive lock) while two vCPUs fault in it and one had cached
    /// a page: once the removal returned no access translates (each ends as
    /// an MMIO exit), and no leaf is left.
    static func memslotRemovalBesideFaults() -> ExplorationScenario<VM> {
        withSequentialOracle(perEntry(ExplorationScenario(
            name: "stage 2: memslot removal beside faults",
            threads: [
                [Step("remove the memslot") { vm in
                    try vm.removeMemslot()
                    return nil
                }],
                [access(3, .write, vcpu: 0), access(5, .read, vcpu: 0)],
                [access(1, .read, vcpu: 1), access(300, .write, vcpu: 1)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler, vcpus: 2, hostThreads: 1, hostMappingSize: .size4K)
                vm.bindNotifier()
                for page: UInt64 in [1, 3] {
                    if let failure = vm.access(page: page, .read, vcpu: 1) { throw SetupFailure(failure) }
                }
                return vm
            },
            check: { $0.check() })))
    }

    /// A second memslot is added while two vCPUs access its pages: before
    /// the add returns an access may end as an MMIO exit; once it returned
    /// every access finds the memslot and completes on its host page.
    static func memslotAddBesideAccesses() -> ExplorationScenario<VM> {
        withSequentialOracle(perEntry(ExplorationScenario(
            name: "stage 2: memslot added beside accesses",
            threads: [
                [Step("add memslot 2") { vm in
                    try vm.addSecondMemslot(pages: 8)
                    return nil
                }],
                [access(513, .read, vcpu: 0), access(514, .write, vcpu: 0)],
                [access(513, .write, vcpu: 1)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler, vcpus: 2, hostThreads: 1, hostMappingSize: .size4K)
                try vm.mapSecondMemslotHostPages(pages: 8)
                if let failure = vm.access(page: 1, .read, vcpu: 0) { throw SetupFailure(failure) }
                return vm
            },
            check: { vm in
                // Once added, every page of the memslot is reachable.
                for page: UInt64 in [513, 514] {
                    if let failure = vm.access(page: page, .write, vcpu: 0) { return "after the add: \(failure)" }
                }
                return vm.check()
            })))
    }

    /// The memslot is made read-only (the notifier binding zaps its range)
    /// while two vCPUs write and read it: once the change returned no write
    /// completes through the tables (each ends as an exit the VMM
    /// emulates), reads still do, and no writable leaf is left.
    static func memslotReadOnlyBesideWrites() -> ExplorationScenario<VM> {
        withSequentialOracle(perEntry(ExplorationScenario(
            name: "stage 2: memslot made read-only beside writes",
            threads: [
                [Step("make the memslot read-only") { vm in
                    try vm.makeMemslotReadOnly()
                    return nil
                }],
                [access(3, .write, vcpu: 0), access(5, .read, vcpu: 0)],
                [access(1, .write, vcpu: 1), access(3, .write, vcpu: 1)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler, vcpus: 2, hostThreads: 1, hostMappingSize: .size4K)
                vm.bindNotifier()
                for page: UInt64 in [1, 3] {
                    if let failure = vm.access(page: page, .write, vcpu: 0) { throw SetupFailure(failure) }
                }
                return vm
            },
            check: { $0.check() })))
    }
}
