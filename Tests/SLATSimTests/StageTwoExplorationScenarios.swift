import SLATArm64
import SLATCore
import SLATSim

/// Stage-2 scenarios for the explorer, through the public API of
/// `StageTwoPageTable` and `StageTwoFaultHandler` (Docs/stage2-mmu.md).
enum StageTwoExplorationScenarios {
    typealias VM = StageTwoExplorationVM
    typealias Step = ExplorationScenario<VM>.Step

    static func access(_ page: UInt64, _ kind: AccessKind, vcpu: Int) -> Step {
        Step("vCPU \(vcpu) \(kind) page \(page)") { vm in vm.access(page: page, kind, vcpu: vcpu) }
    }

    /// A shared unmap of a 2 MiB range mapped by pages, beside a vCPU whose
    /// fault maps the range again as a 2 MiB block and a vCPU that had
    /// cached one of the old pages and reads another (Docs/concurrency.md,
    /// shared unmap: an emptied entry stays locked until invalidated).
    static func sharedUnmapBesideBlockFault() -> ExplorationScenario<VM> {
        ExplorationScenario(
            name: "stage 2: shared unmap beside a block fault",
            threads: [
                [Step("shared unmap of the 2 MiB range") { vm in
                    try vm.lock.withShared { () throws(SLATError) in
                        try vm.mmu.unmap(vm.guestRange, mode: .shared, context: vm.contexts[2])
                    }
                    return nil
                }],
                [access(3, .read, vcpu: 1), access(1, .read, vcpu: 0)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler, vcpus: 2, hostThreads: 1)
                try vm.mapPages(0..<512, context: 2)
                if let failure = vm.access(page: 0, .read, vcpu: 0) { throw SetupFailure(failure) }
                return vm
            },
            check: { $0.check() })
    }

    /// A shared unmap that empties and frees the tables of page 0 beside a
    /// vCPU whose page fault (4 KiB host pages: one page, by the fault
    /// handler's lean walk) goes through those tables or links new ones. The
    /// unmap locks every entry of a table it frees, so the fault either
    /// lands its leaf before (and the table stays) or meets a locked entry
    /// and starts again from the root; a leaf must never land in a table
    /// already unlinked, and no table page may be read after it was freed.
    static func sharedUnmapBesidePageFault() -> ExplorationScenario<VM> {
        withSequentialOracle(ExplorationScenario(
            name: "stage 2: shared unmap beside a page fault",
            threads: [
                [Step("shared unmap of page 0") { vm in
                    try vm.lock.withShared { () throws(SLATError) in
                        try vm.mmu.unmap(GuestPhysicalRange(start: vm.address(page: 0), size: VM.page),
                                         mode: .shared, context: vm.contexts[2])
                    }
                    return nil
                }],
                [access(3, .write, vcpu: 1)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler, vcpus: 2, hostThreads: 1, hostMappingSize: .size4K)
                try vm.mapPages(0..<1, context: 2)
                return vm
            },
            check: { vm in
                if let failure = vm.check() { return failure }
                // The fault's page stays mapped: the unmap covered page 0 only.
                let leaf = vm.mmu.table.translate(vm.address(page: 3)).translation
                return leaf?.output == vm.output(page: 3) ? nil : "page 3 not mapped after its fault: \(String(describing: leaf))"
            }))
    }

    /// A fault that maps a 2 MiB block over a table of 4 KiB pages (the
    /// anchored merge, Docs/stage2-mmu.md) beside a vCPU that cached one of
    /// the pages and goes on reading.
    static func mergeBesideCachedPages() -> ExplorationScenario<VM> {
        ExplorationScenario(
            name: "stage 2: merge beside cached pages",
            threads: [
                [access(5, .read, vcpu: 1)],
                [access(1, .read, vcpu: 0), access(2, .read, vcpu: 0)],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler, vcpus: 2, hostThreads: 1)
                // Every page but page 5: its fault maps the whole block.
                try vm.mapPages(0..<5, context: 2)
                try vm.mapPages(6..<512, context: 2)
                if let failure = vm.access(page: 1, .read, vcpu: 0) { throw SetupFailure(failure) }
                return vm
            },
            check: { $0.check() })
    }

    /// A vCPU reads then writes a read-only page while a host thread adds
    /// write permission in place (a map that only adds rights owes no
    /// invalidation); the Arm CPU keeps an entry that fails a permission
    /// check, so the write's fault finds nothing to change.
    static func writeBesidePermissionGain() -> ExplorationScenario<VM> {
        withSequentialOracle(ExplorationScenario(
            name: "stage 2: write beside a permission gain",
            threads: [
                [access(7, .read, vcpu: 0), access(7, .write, vcpu: 0)],
                [Step("map page 7 read-write (gain only)") { vm in
                    try vm.mapPages(7..<8, permissions: .readWrite, context: 2)
                    return nil
                }],
            ],
            makeWorld: { scheduler in
                let vm = try VM(scheduler, vcpus: 1, hostThreads: 2, hostMappingSize: .size4K)
                try vm.mapPages(7..<8, permissions: .read, context: 1)
                return vm
            },
            check: { $0.check() }))
    }

    /// Dirty logging on: two vCPUs write pages (faults split nothing: pages
    /// are mapped by 4 KiB leaves) while a host thread harvests; the final
    /// harvest is taken after the threads. Every page written must appear in
    /// some harvest (dirty-log completeness).
    static func dirtyLogHarvestBesideWrites() -> ExplorationScenario<DirtyLogWorld> {
        let write = { (page: UInt64, vcpu: Int) in
            ExplorationScenario<DirtyLogWorld>.Step("vCPU \(vcpu) write page \(page)") { world in
                let failure = world.vm.access(page: page, .write, vcpu: vcpu)
                if failure == nil { world.written.insert(page) }
                return failure
            }
        }
        let harvest = ExplorationScenario<DirtyLogWorld>.Step("harvest") { world in
            try world.harvest()
            return nil
        }
        return withSequentialOracle(ExplorationScenario(
            name: "stage 2: dirty-log harvest beside writes",
            threads: [[write(1, 0), write(2, 0)], [write(2, 1), write(3, 1)], [harvest]],
            makeWorld: { scheduler in
                let vm = try VM(scheduler, vcpus: 2, hostThreads: 1)
                try vm.mapPages(0..<16, context: 2)
                try vm.mmu.enableDirtyLogging(memslot: 1, guestMemory: vm.guestMemory, lock: vm.lock, context: vm.contexts[2])
                return DirtyLogWorld(vm)
            },
            check: { world in
                do { try world.harvest() } catch { return "final harvest threw \(error)" }
                let missing = world.written.subtracting(world.harvested)
                if !missing.isEmpty { return "dirty log lost pages \(missing.sorted())" }
                return world.vm.check()
            }))
    }
}

/// A stage-2 VM with its dirty-log bookkeeping.
// @unchecked Sendable: as StageTwoExplorationVM.
final class DirtyLogWorld: @unchecked Sendable {
    let vm: StageTwoExplorationVM
    var written: Set<UInt64> = []
    var harvested: Set<UInt64> = []
    init(_ vm: StageTwoExplorationVM) { self.vm = vm }

    func harvest() throws {
        let words = try vm.mmu.getAndClearDirtyLog(memslot: 1, lock: vm.lock, context: vm.contexts[2])
        for (index, word) in words.enumerated() {
            for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 { harvested.insert(UInt64(index * 64 + bit)) }
        }
    }
}

struct SetupFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
