// One VMM, two architectures: the fault loop, dirty logging, notifier
// handling, pfn cache and teardown are written once against SLAT's
// `SecondStageMMU`, and run on an EPT VM and on a stage-2 VM whose guest
// RAM is real memory of this process. Exits 1 when a check fails.
import Dispatch
import Glibc
import SLAT
import Synchronization

/// The guest: 8 MiB of this process's memory at guest 4 GiB.
struct GuestRAM {
    static let guestBase: UInt64 = 0x1_0000_0000
    static let pages = 2048
    let host = ProcessMappedHostMemory()
    let range: HostVirtualRange
    let memory = GuestMemory()

    init() throws {
        range = try host.mapAnonymousRegion(byteCount: Self.pages << 12, alignment: 2 << 20)
        try memory.hostPages.map(range.start, to: HostFrameNumber(0x10_0000), count: UInt64(Self.pages))
        try memory.addMemslot(Memslot(id: 1, baseFrame: GuestPhysicalAddress(Self.guestBase).frame,
                                      pageCount: UInt64(Self.pages), hostAddress: range.start))
    }

    static func page(_ index: Int) -> GuestPhysicalAddress { GuestPhysicalAddress(guestBase + UInt64(index) << 12) }
}

/// What the VMM checks; a failed check is printed and counted.
final class Checks: Sendable {
    let failures = Atomic<Int>(0)
    func expect(_ condition: Bool, _ what: String) {
        if !condition {
            failures.wrappingAdd(1, ordering: .relaxed)
            print("FAIL: \(what)")
        }
    }
}

/// The VMM's fault loop: re-run until the outcome is not a retry; a fault
/// without a memslot is MMIO, emulated here by returning nil.
func handle<MMU: SecondStageMMU>(_ mmu: MMU, _ fault: SecondStageFault, vcpu: PageTableContext) throws -> SecondStageFaultOutcome? {
    while true {
        if try mmu.isRootReloadRequested(vcpu) { _ = try mmu.loadRoot(vcpu) }
        do {
            let outcome = try mmu.handleFault(fault, vcpu: vcpu)
            if !outcome.isRetry { return outcome }
        } catch SLATError.noMemslot {
            return nil
        }
    }
}

/// The whole VMM, generic over the architecture.
func run<MMU: SecondStageMMU>(_ name: String, _ mmu: MMU, ram: GuestRAM, checks: Checks) throws {
    // vCPU threads fault in the guest's memory.
    let vcpus = 2
    DispatchQueue.concurrentPerform(iterations: vcpus) { index in
        let vcpu = PageTableContext(readerSlot: index)
        do {
            _ = try mmu.loadRoot(vcpu)
            for page in stride(from: index, to: GuestRAM.pages, by: vcpus) {
                _ = try handle(mmu, SecondStageFault(address: GuestRAM.page(page), access: .write), vcpu: vcpu)
            }
        } catch {
            checks.expect(false, "\(name): vCPU \(index): \(error)")
        }
    }
    let vcpu = PageTableContext(readerSlot: 0)
    let mapped = try (0..<GuestRAM.pages).filter { try mmu.translate(GuestRAM.page($0), context: vcpu).translation != nil }
    checks.expect(mapped.count == GuestRAM.pages, "\(name): \(mapped.count) of \(GuestRAM.pages) pages mapped")
    checks.expect(try handle(mmu, SecondStageFault(address: GuestPhysicalAddress(0xFEE0_0000), access: .read), vcpu: vcpu) == nil,
                  "\(name): a fault without a memslot is MMIO")

    // Two dirty-log rounds (migration): every page written after enabling is reported.
    try mmu.enableDirtyLogging(memslot: 1)
    for round in 0..<2 {
        let written = (0..<16).map { ($0 * 97 + round * 31) % GuestRAM.pages }.sorted()
        for page in written {
            _ = try handle(mmu, SecondStageFault(address: GuestRAM.page(page), access: .write, isPermissionFault: true), vcpu: vcpu)
        }
        let bitmap = try mmu.getAndClearDirtyLog(memslot: 1)
        let reported = (0..<GuestRAM.pages).filter { bitmap[$0 / 64] >> UInt64($0 % 64) & 1 != 0 }
        checks.expect(reported == Array(Set(written)).sorted(), "\(name): round \(round) reported \(reported.count) pages")
    }
    try mmu.disableDirtyLogging(memslot: 1)

    // A round with manual protection (KVM_CLEAR_DIRTY_LOG): the log starts
    // full, the VMM clears (re-protects) a 64-page range before copying it,
    // and a write after the clear is reported again.
    try mmu.enableDirtyLogging(memslot: 1, protection: .manual(initiallySet: true))
    checks.expect(try mmu.getDirtyLog(memslot: 1).reduce(0) { $0 + $1.nonzeroBitCount } == GuestRAM.pages,
                  "\(name): a log set initially reports every page")
    try mmu.clearDirtyLog(memslot: 1, firstPage: 64, bitmap: [~0])
    _ = try handle(mmu, SecondStageFault(address: GuestRAM.page(70), access: .write, isPermissionFault: true), vcpu: vcpu)
    let manual = try mmu.getDirtyLog(memslot: 1)
    checks.expect(manual[1] == 1 << 6 && manual[0] == ~0, "\(name): after the clear only the page written again is reported")
    try mmu.disableDirtyLogging(memslot: 1)

    // A pfn cache on the guest's real RAM: what it writes, the VMM reads at its own address.
    let registry = PfnCacheRegistry(guestMemory: ram.memory, hostMemory: ram.host)
    let stealTime = PfnCache(registry: registry)
    try stealTime.activate(guestAddress: GuestRAM.page(7).advanced(by: 0x40), length: 8)
    try stealTime.access(length: 8) { $0.storeBytes(of: UInt64(0x5EA1), as: UInt64.self) }
    let vmmView = UnsafeRawPointer(bitPattern: UInt(ram.range.start.rawValue + 7 << 12 + 0x40))!.load(as: UInt64.self)
    checks.expect(vmmView == 0x5EA1, "\(name): the pfn cache wrote the guest's RAM")

    // The host unmaps a page (mmu-notifier): the translation and the cache go.
    try ram.memory.hostPages.unmap(HostVirtualRange(start: ram.range.start.advanced(by: 7 << 12), size: 0x1000))
    checks.expect(try mmu.translate(GuestRAM.page(7), context: vcpu).translation == nil, "\(name): the notifier zapped the page")
    checks.expect(!stealTime.check(length: 8), "\(name): the notifier invalidated the pfn cache")
    stealTime.deactivate()

    // Teardown: idempotent; afterwards every call is refused.
    mmu.teardown()
    mmu.teardown()
    do {
        _ = try mmu.handleFault(SecondStageFault(address: GuestRAM.page(0), access: .read), vcpu: vcpu)
        checks.expect(false, "\(name): a fault after teardown was handled")
    } catch {
        checks.expect(error == .tornDown, "\(name): a fault after teardown throws tornDown, not \(error)")
    }
    print("\(name): \(GuestRAM.pages) pages faulted by \(vcpus) vCPUs, 2 dirty-log rounds, pfn cache, notifier, teardown")
}

let checks = Checks()
do {
    let x86RAM = try GuestRAM()
    let ept = try ExtendedPageTableMMU(format: try ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: false),
                                       memory: try TableArena(pageCount: 512), tlb: CountingTLB(),
                                       guestMemory: x86RAM.memory, configuration: MMUConfiguration(readerSlots: 4))
    try run("EPT", ept, ram: x86RAM, checks: checks)

    let armRAM = try GuestRAM()
    let stageTwo = try StageTwoMMU(format: try StageTwoFormat(inputAddressBits: 40), memory: try TableArena(pageCount: 512),
                                   tlb: CountingTLB(), caches: CountingCacheMaintenance(), vmid: 1,
                                   guestMemory: armRAM.memory, lock: PThreadReaderWriterLock(), readerSlots: 4)
    try run("stage 2", stageTwo, ram: armRAM, checks: checks)
} catch {
    checks.expect(false, "setup: \(error)")
}
let failed = checks.failures.load(ordering: .relaxed)
print(failed == 0 ? "TwoArchitectureVMM: PASS" : "TwoArchitectureVMM: \(failed) checks failed")
if failed != 0 { exit(1) }
