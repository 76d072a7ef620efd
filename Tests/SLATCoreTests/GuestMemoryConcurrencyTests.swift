import Synchronization
import Testing
@testable import SLATCore

/// A stand-in second-level MMU: one host frame per guest frame, under an MMU lock.
///
/// `@unchecked Sendable`: `table` is read with `lock` held shared and
/// written with it held exclusively.
private final class ToyMMU: @unchecked Sendable {
    let lock = SpinningReaderWriterLock()
    var table: [HostFrameNumber?]

    init(frames: Int) { table = Array(repeating: nil, count: frames) }

    /// Entries that disagree with what the host maps now (call with `lock` held).
    func staleEntries(in memory: GuestMemory, slot: Memslot) -> Int {
        var stale = 0
        for (index, entry) in table.enumerated() {
            guard let entry else { continue }
            let address = slot.hostAddress(of: GuestFrameNumber(slot.baseFrame.rawValue + UInt64(index)))!
            if memory.hostPages.lookup(address)?.frame != entry { stale += 1 }
        }
        return stale
    }
}

@Suite("Guest memory: faults racing invalidations")
struct GuestMemoryConcurrencyTests {
    @Test("faults that check the tracker under the MMU lock never keep a translation to a migrated page")
    func faultsNeverKeepStaleTranslations() throws {
        let pages = 16
        let memory = GuestMemory()
        let slot = Memslot(id: 1, baseFrame: GuestFrameNumber(0x100), pageCount: UInt64(pages),
                           hostAddress: HostVirtualAddress(0x7000_0000))
        try memory.hostPages.map(slot.hostAddress, to: HostFrameNumber(0x1000), count: UInt64(pages))
        try memory.addMemslot(slot)
        let mmu = ToyMMU(frames: pages)
        let staleSeen = Atomic<Int>(0)
        _ = memory.addListener { event in
            switch event.phase {
            case .start:
                // The zap: exclusive MMU lock, after the tracker began.
                mmu.lock.withExclusive {
                    for frame in event.range.start.rawValue..<event.range.end.rawValue {
                        mmu.table[Int(frame - slot.baseFrame.rawValue)] = nil
                    }
                }
            case .end:
                let stale = mmu.lock.withShared { mmu.staleEntries(in: memory, slot: slot) }
                staleSeen.wrappingAdd(stale, ordering: .relaxed)
            }
        }
        let installs = Atomic<Int>(0)
        let retries = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
        let attempts = Atomic<Int>(0)
        LockTestThreads.run(3) { index in
            if index == 0 {
                var generator = SystemRandomNumberGenerator()
                // At least 2 000 migrations, and until the faults have run a
                // while alongside (bounded by a deadline).
                let deadline = ContinuousClock.now + .seconds(10)
                var round: UInt64 = 0
                while round < 2_000 || (attempts.load(ordering: .relaxed) < 20_000 && ContinuousClock.now < deadline) {
                    round += 1
                    let first = UInt64.random(in: 0..<UInt64(pages - 4), using: &generator)
                    let count = UInt64.random(in: 1...4, using: &generator)
                    try? memory.hostPages.remap(
                        HostVirtualRange(start: slot.hostAddress.advanced(by: first << 12), size: count << 12),
                        to: HostFrameNumber(0x10_0000 + round * 8))
                }
                stop.store(true, ordering: .relaxed)
            } else {
                var generator = SystemRandomNumberGenerator()
                while !stop.load(ordering: .relaxed) {
                    let offset = UInt64.random(in: 0..<UInt64(pages), using: &generator)
                    let frame = GuestFrameNumber(slot.baseFrame.rawValue + offset)
                    attempts.wrappingAdd(1, ordering: .relaxed)
                    guard let page = try? memory.resolve(frame: frame, write: false) else { continue }
                    mmu.lock.withExclusive {
                        if memory.invalidations.needsRetry(frame: frame, since: page.sequence) {
                            retries.wrappingAdd(1, ordering: .relaxed)
                        } else {
                            mmu.table[Int(offset)] = page.hostFrame
                            installs.wrappingAdd(1, ordering: .relaxed)
                        }
                    }
                }
            }
        }
        #expect(staleSeen.load(ordering: .relaxed) == 0)
        #expect(mmu.lock.withShared { mmu.staleEntries(in: memory, slot: slot) } == 0)
        #expect(installs.load(ordering: .relaxed) > 0)
        #expect(retries.load(ordering: .relaxed) > 0)
    }
}
