import Testing
import SLATCore
import SLATx86

/// ``FlushRequests`` and ``TLBFlushBatch``: what an operation owes, kept
/// exactly up to eight addresses, degrading to one covering range beyond.
@Suite struct FlushRequestsTests {
    static func address(_ raw: UInt64) -> GuestPhysicalAddress { GuestPhysicalAddress(raw) }
    /// A stage-2 style level hint (Arm ARM level 3 − height).
    static func level(_ height: Int) -> LeafLevel { LeafLevel(height: height, architectural: 3 - height) }

    static func issued(_ requests: FlushRequests) -> [Invalidation] {
        let tlb = RecordingTLB()
        requests.issue(to: tlb)
        return tlb.log
    }

    @Test("Up to eight addresses are issued one by one, with their level hints")
    func eightAddressesAreExact() {
        var requests = FlushRequests()
        for index: UInt64 in 0..<8 { requests.invalidate(address: Self.address(index * 0x10_000), level: Self.level(Int(index % 2)), size: 0x1000) }
        #expect(FlushRequests.addressCapacity == 8)
        #expect(Self.issued(requests) == (0..<8).map { .address(Self.address(UInt64($0) * 0x10_000), level: $0 % 2) })
    }

    @Test("A ninth address degrades everything owed to one range covering all of it")
    func ninthAddressDegradesToTheHull() throws {
        var requests = FlushRequests()
        requests.invalidate(range: GuestPhysicalRange(0x5000_0000, size: 0x20_0000))
        for index: UInt64 in 0..<9 { requests.invalidate(address: Self.address(0x4000_0000 + index * 0x1000), level: Self.level(0), size: 0x1000) }
        requests.invalidate(address: Self.address(0x6000_0000), level: Self.level(1), size: 0x20_0000)
        #expect(Self.issued(requests) == [.range(try GuestPhysicalRange(start: Self.address(0x4000_0000), end: Self.address(0x6020_0000)))])
    }

    @Test("A ninth range degrades to the hull too")
    func ninthRangeDegrades() {
        var requests = FlushRequests()
        for index: UInt64 in 0..<8 { requests.invalidate(range: GuestPhysicalRange(index * 0x40_0000, size: 0x1000)) }
        #expect(Self.issued(requests).count == 8)
        requests.invalidate(range: GuestPhysicalRange(0x1000_0000, size: 0x1000))
        #expect(Self.issued(requests) == [.range(GuestPhysicalRange(0, size: 0x1000_1000))])
    }

    @Test("A whole-context invalidation replaces everything else owed")
    func wholeContextWins() {
        var requests = FlushRequests()
        requests.invalidate(address: Self.address(0x1000), level: Self.level(0), size: 0x1000)
        requests.invalidate(range: GuestPhysicalRange(0x20_0000, size: 0x20_0000))
        requests.invalidateAll()
        requests.invalidate(address: Self.address(0x3000), level: Self.level(0), size: 0x1000)
        #expect(Self.issued(requests) == [.all])
    }

    @Test("Merging keeps exact requests within capacity and degrades beyond it")
    func merging() {
        var a = FlushRequests(), b = FlushRequests()
        for index: UInt64 in 0..<4 { a.invalidate(address: Self.address(index * 0x1000), level: Self.level(0), size: 0x1000) }
        for index: UInt64 in 4..<8 { b.invalidate(address: Self.address(index * 0x1000), level: Self.level(0), size: 0x1000) }
        b.freeAfterFlush(HostPhysicalAddress(0x7000))
        var merged = a
        merged.merge(b)
        #expect(Self.issued(merged).count == 8)
        var holder = TLBFlushBatch()
        holder.requests = merged
        let pages = holder.discard()
        #expect(pages == [HostPhysicalAddress(0x7000)])
        merged.merge(a)
        #expect(Self.issued(merged) == [.range(GuestPhysicalRange(0, size: 0x8000))])
        var withAll = FlushRequests()
        var all = FlushRequests()
        all.invalidateAll()
        withAll.merge(all)
        #expect(Self.issued(withAll) == [.all])
    }

    @Test("Empty requests owe nothing; a page to free alone makes them non-empty but owes no invalidation")
    func emptiness() {
        var requests = FlushRequests()
        #expect(requests.isEmpty && !requests.owesInvalidation)
        #expect(Self.issued(requests).isEmpty)
        requests.freeAfterFlush(HostPhysicalAddress(0x1000))
        #expect(!requests.isEmpty && !requests.owesInvalidation)
        requests.invalidate(address: Self.address(0), level: Self.level(0), size: 0x1000)
        #expect(requests.owesInvalidation)
    }

    @Test("A batch flushes what it owes and hands back its pages")
    func batchFlush() {
        var batch = TLBFlushBatch()
        batch.invalidate(address: Self.address(0x1000), level: Self.level(0), size: 0x1000)
        batch.invalidate(range: GuestPhysicalRange(0x40_0000, size: 0x20_0000))
        batch.freeAfterFlush(HostPhysicalAddress(0x9000))
        let pending = batch.pendingPageCount
        let whole = batch.needsWholeContextFlush
        #expect(pending == 1 && !whole)
        let tlb = RecordingTLB()
        let pages = batch.flush(to: tlb)
        #expect(pages == [HostPhysicalAddress(0x9000)])
        #expect(tlb.log == [.address(Self.address(0x1000), level: 0), .range(GuestPhysicalRange(0x40_0000, size: 0x20_0000))])
    }

    @Test("A discarded batch issues nothing and hands back its pages")
    func batchDiscard() {
        var batch = TLBFlushBatch()
        batch.invalidateAll()
        batch.freeAfterFlush(HostPhysicalAddress(0x2000))
        let whole = batch.needsWholeContextFlush
        #expect(whole)
        let pages = batch.discard()
        #expect(pages == [HostPhysicalAddress(0x2000)])
    }

    @Test("Settling a batch on a CountingTLB counts each kind once")
    func countingTLBCounts() throws {
        let f = try TableFixture(ExtendedPageTableFormat(levelCount: 4))
        let tlb = CountingTLB()
        var batch = TLBFlushBatch()
        batch.invalidate(address: Self.address(0), level: Self.level(0), size: 0x1000)
        batch.invalidate(address: Self.address(0x1000), level: Self.level(0), size: 0x1000)
        batch.invalidate(range: GuestPhysicalRange(0x40_0000, size: 0x1000))
        f.table.settle(batch, tlb: tlb, mode: .exclusive)
        #expect(tlb.counts == TLBInvalidationCounts(addresses: 2, ranges: 1, contexts: 0))
        #expect(tlb.counts.total == 3)
        var all = TLBFlushBatch()
        all.invalidateAll()
        f.table.settle(all, tlb: tlb, mode: .exclusive)
        #expect(tlb.counts == TLBInvalidationCounts(addresses: 2, ranges: 1, contexts: 1))
    }
}
