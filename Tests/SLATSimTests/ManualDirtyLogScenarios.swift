import SLATArm64
import SLATCore
import SLATSim
import SLATx86

/// Dirty logging with manual protection (`DirtyLogProtection.manual`,
/// KVM's `KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2`): a host thread reads the log
/// (`getDirtyLog`) and clears what it read (`clearDirtyLog`, which
/// protects those pages again) while vCPUs write, on both backends
/// (Docs/x86-tdp-mmu.md and Docs/stage2-mmu.md, manual protection).
///
/// The oracle is the manual-protection contract. A VMM copies a page after
/// the clear that covers it returned, so a write made before such a clear
/// returned is in that copy; every other write — one made after the last
/// clear of its page returned — must be reported by a later read. The
/// reads never clear, so the final read at the end reports every such
/// write still owed. "Made" is the hardware access that completed the
/// write (one scheduled step), not the start of its fault handling.
enum ManualDirtyLogScenarios {
    typealias X86World = ManualDirtyLogWorld<TDPExplorationVM>
    typealias StageTwoWorld = ManualDirtyLogWorld<StageTwoExplorationVM>

    /// vCPU 0 writes pages 1, 2 and 1 again, vCPU 1 writes page 2, a host
    /// thread reads and clears twice: a page written, read, cleared and
    /// written again must be reported again.
    static func threads<VM>(write: @escaping @Sendable (ManualDirtyLogWorld<VM>, UInt64, Int) -> String?)
        -> [[ExplorationScenario<ManualDirtyLogWorld<VM>>.Step]] {
        typealias Step = ExplorationScenario<ManualDirtyLogWorld<VM>>.Step
        let writeStep = { (page: UInt64, vcpu: Int) in
            Step("vCPU \(vcpu) write page \(page)") { world in write(world, page, vcpu) }
        }
        let readAndClear = Step("read the log and clear what it read") { world in
            try world.readAndClear()
            return nil
        }
        return [
            [writeStep(1, 0), writeStep(2, 0), writeStep(1, 0)],
            [writeStep(2, 1)],
            [readAndClear, readAndClear],
        ]
    }

    /// x86: the log in `mode`; write-protect mode starts with every page
    /// set (only the clears protect the small leaves), dirty-bit mode
    /// starts clear (the enable cleans the dirty bits).
    static func x86BesideWrites(mode: DirtyLogMode) -> ExplorationScenario<X86World> {
        let initiallySet = mode == .writeProtect
        return perEntry(ExplorationScenario(
            name: "x86: manual dirty-log protection (\(mode)) beside writes",
            threads: threads { world, page, vcpu in world.write(page, vcpu: vcpu) { $0.access(page, .write, vcpu: vcpu) } },
            makeWorld: { scheduler in
                let vm = try TDPExplorationVM(scheduler)
                for frame: UInt64 in [1, 2] {
                    if let failure = vm.access(frame, .write, vcpu: 0) { throw SetupFailure(failure) }
                }
                try vm.mmu.enableDirtyLogging(memslot: 1, mode: mode, protection: .manual(initiallySet: initiallySet))
                return ManualDirtyLogWorld(vm, hook: { vm, hook in vm.beforeHardwareAccess = hook },
                                           read: { vm in try vm.mmu.getDirtyLog(memslot: 1) },
                                           clear: { vm, words in try vm.mmu.clearDirtyLog(memslot: 1, firstPage: 0, bitmap: words) },
                                           check: { $0.check() })
            },
            check: { $0.check() }))
    }

    /// Stage 2: pages mapped by 4 KiB leaves, the log started clear (the
    /// enable write-protects the slot), the fault handler marking a page
    /// when it grants write access.
    static func stageTwoBesideWrites() -> ExplorationScenario<StageTwoWorld> {
        withSequentialOracle(perEntry(ExplorationScenario(
            name: "stage 2: manual dirty-log protection beside writes",
            threads: threads { world, page, vcpu in
                world.write(page, vcpu: vcpu) { $0.access(page: page, .write, vcpu: vcpu) }
            },
            makeWorld: { scheduler in
                let vm = try StageTwoExplorationVM(scheduler, vcpus: 2, hostThreads: 1)
                try vm.mapPages(0..<16, context: 2)
                try vm.mmu.enableDirtyLogging(memslot: 1, guestMemory: vm.guestMemory, lock: vm.lock,
                                              context: vm.contexts[2], protection: .manual(initiallySet: false))
                return ManualDirtyLogWorld(vm, hook: { vm, hook in vm.beforeHardwareAccess = hook },
                                           read: { vm in try vm.mmu.getDirtyLog(memslot: 1) },
                                           clear: { vm, words in
                                               try vm.mmu.clearDirtyLog(memslot: 1, firstPage: 0, bitmap: words,
                                                                        lock: vm.lock, context: vm.contexts[2])
                                           },
                                           check: { $0.check() })
            },
            check: { $0.check() })))
    }
}

/// A VM whose memslot 1 logs with manual protection, with the bookkeeping
/// of the manual-protection contract (page `i` is bit `i` of the log).
// @unchecked Sendable: used by one logical thread of the scheduler at a
// time, and by the building thread only before and after them.
final class ManualDirtyLogWorld<VM: AnyObject>: @unchecked Sendable {
    let vm: VM
    let readLog: (VM) throws -> [UInt64]
    let clearLog: (VM, [UInt64]) throws -> Void
    let checkVM: (VM) -> String?
    /// How many clears covering each page have returned.
    var clearsReturned: [UInt64: Int] = [:]
    /// Each vCPU's page and `clearsReturned` of it at its latest hardware
    /// attempt.
    var attempt: [Int: (page: UInt64, clears: Int)] = [:]
    /// Every completed write: its page and the clears of it returned when
    /// the write was made.
    var writes: [(page: UInt64, clears: Int)] = []

    init(_ vm: VM, hook: (VM, @escaping (UInt64, Int) -> Void) -> Void,
         read: @escaping (VM) throws -> [UInt64], clear: @escaping (VM, [UInt64]) throws -> Void,
         check: @escaping (VM) -> String?) {
        self.vm = vm
        readLog = read
        clearLog = clear
        checkVM = check
        hook(vm) { [unowned self] page, vcpu in
            attempt[vcpu] = (page, clearsReturned[page, default: 0])
        }
    }

    /// One write of `vcpu` to `page` by `access`; a completed write is
    /// recorded with the clears returned at the attempt that made it. An
    /// access that ended as an exit (none here: the memslot stays) made no
    /// write.
    func write(_ page: UInt64, vcpu: Int, _ access: (VM) -> String?) -> String? {
        attempt[vcpu] = nil
        if let failure = access(vm) { return failure }
        guard let made = attempt[vcpu], made.page == page else { return "vCPU \(vcpu)'s write of page \(page) made no access" }
        writes.append(made)
        return nil
    }

    static func pages(_ words: [UInt64]) -> Set<UInt64> {
        var pages: Set<UInt64> = []
        for (index, word) in words.enumerated() {
            for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 { pages.insert(UInt64(index * 64 + bit)) }
        }
        return pages
    }

    /// Reads the log, then clears what it read; once the clear returned,
    /// each page it covered counts one more clear.
    func readAndClear() throws {
        let words = try readLog(vm)
        guard words.contains(where: { $0 != 0 }) else { return }
        try clearLog(vm, words)
        for page in Self.pages(words) { clearsReturned[page, default: 0] += 1 }
    }

    /// The contract at the end: the final read reports every write made
    /// after the last clear of its page returned; then the VM's own checks.
    func check() -> String? {
        let reported: Set<UInt64>
        do { reported = Self.pages(try readLog(vm)) } catch { return "final read threw \(error)" }
        let owed = Set(writes.filter { $0.clears == clearsReturned[$0.page, default: 0] }.map(\.page))
        let missing = owed.subtracting(reported)
        if !missing.isEmpty { return "dirty log lost writes to pages \(missing.sorted()) made after their last clear returned" }
        return checkVM(vm)
    }
}
