import SLATCore
import SLATSim
import SLATx86
import Testing

/// The usage example of Docs/simulation.md, as written there.
@Suite struct DocumentationExampleTests {
    @Test("The documented example runs and reports nothing")
    func documentedExample() throws {
        let format = try ExtendedPageTableFormat(levelCount: 4)          // or StageTwoFormat(...)
        let log = SimulationLog()                                         // .trap to debug
        let tlb = SimulatedContextTLB(format: format, vcpuCount: 2, log: log)
        let memory = SimulatedTableMemory(wrapping: try TableArena(pageCount: 256), watching: [tlb])
        let table = try PageTable(format: format, memory: memory)
        let walker = HardwareWalker(table: table)                         // profile derived from the format
        tlb.attach(walker)                                                // enables the stale detectors
        let context = PageTableContext()

        var batch = TLBFlushBatch()
        try table.map(GuestPhysicalRange(start: GuestPhysicalAddress(0x20_0000), size: 0x20_0000),
                      to: HostPhysicalAddress(0x4000_0000), attributes: LeafAttributes(permissions: .readWrite),
                      context: context, batch: &batch, tlb: tlb)
        table.settle(batch, tlb: tlb, mode: .exclusive)

        let result = walker.access(GuestPhysicalAddress(0x20_1000), .write, through: tlb.vcpu(0))
        #expect(result == .translated(HostPhysicalAddress(0x4000_1000), tlbHit: false))

        tlb.verifyCoherence()
        #expect(log.isEmpty, "\(log.summary)")
    }
}
