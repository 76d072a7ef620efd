import SLATArm64
import SLATCore
import SLATSim
import SLATx86
import Testing

/// Collecting and counting reports, and the profiles formats imply.
@Suite struct SimulationLogTests {
    func report(_ kind: SimulationReportKind, _ address: UInt64) -> SimulationReport {
        SimulationReport(kind: kind, address: GuestPhysicalAddress(address), vcpu: 0, entries: [], event: .coherenceCheck)
    }

    @Test("Reports are kept in order and counted by kind")
    func reportsAreCountedByKind() {
        let log = SimulationLog()
        log.record(report(.conflict, 0x1000))
        log.record(report(.staleUse, 0x2000))
        log.record(report(.conflict, 0x3000))
        #expect(log.count == 3 && log.count(of: .conflict) == 2 && log.count(of: .staleUse) == 1 && log.count(of: .staleEntry) == 0)
        #expect(log.reports.map(\.address.rawValue) == [0x1000, 0x2000, 0x3000])
        #expect(log.reports(of: .conflict).map(\.address.rawValue) == [0x1000, 0x3000])
        #expect(!log.isEmpty && log.summary.hasPrefix("3 report(s)"))
    }

    @Test("Beyond the retained limit reports are counted but not kept")
    func retainedLimit() {
        let log = SimulationLog(retainedLimit: 2)
        for index in 0..<5 { log.record(report(.freedTableStillCached, UInt64(index) << 12)) }
        #expect(log.count(of: .freedTableStillCached) == 5)
        #expect(log.reports.count == 2)
    }

    @Test("The trap policy stops the process at the first report and names it")
    func trapPolicyStopsAtFirstReport() async throws {
        let result = try await #require(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let log = SimulationLog(policy: .trap)
            log.record(SimulationReport(kind: .conflict, address: GuestPhysicalAddress(0x5000), vcpu: 3,
                                        entries: [], event: .coherenceCheck))
        }
        let message = String(decoding: result.standardErrorContent, as: UTF8.self)
        #expect(message.contains("SLATSim:") && message.contains("0x5000"))
    }

    @Test("Reset forgets reports and counts")
    func resetClears() {
        let log = SimulationLog()
        log.record(report(.staleEntry, 0x1000))
        log.reset()
        #expect(log.isEmpty && log.reports.isEmpty && log.summary == "no reports")
    }

    @Test("Profiles derived from formats match the hardware's")
    func derivedProfiles() throws {
        #expect(HardwareProfile(deriving: try ExtendedPageTableFormat(accessedDirtyEnabled: true)) == .intelEPT(accessedDirtyEnabled: true))
        #expect(HardwareProfile(deriving: try ExtendedPageTableFormat(accessedDirtyEnabled: false)).accessFlag == .ignored)
        #expect(HardwareProfile(deriving: try StageTwoFormat()).accessFlag == .faultWhenClear)
        #expect(HardwareProfile(deriving: try StageTwoFormat(hardwareAccessFlag: true)) == .armStageTwo(hardwareAccessFlag: true))
        #expect(HardwareProfile.intelEPT(accessedDirtyEnabled: true).permissionlessLeafIsNotPresent)
        #expect(!HardwareProfile.armStageTwo(hardwareAccessFlag: true).setsDirtyFlag)
    }

    @Test("The walker finds each format's accessed and dirty bits")
    func flagMasks() throws {
        let machineEPT = try SimMachine(try ExtendedPageTableFormat(accessedDirtyEnabled: true))
        #expect(machineEPT.walker.accessedMask == 1 << 8 && machineEPT.walker.dirtyMask == 1 << 9)
        let machineArm = try SimMachine(try StageTwoFormat(hardwareAccessFlag: true))
        #expect(machineArm.walker.accessedMask == 1 << 10 && machineArm.walker.dirtyMask == 0)
    }

    @Test("A walk path records pages in order and answers membership")
    func walkPath() {
        var path = TableWalkPath()
        for page: UInt64 in [0x1000, 0x5000, 0x3000] { path.append(HostPhysicalAddress(page)) }
        #expect(path.count == 3 && path[1] == HostPhysicalAddress(0x5000))
        #expect(path.contains(HostPhysicalAddress(0x3000)) && !path.contains(HostPhysicalAddress(0x2000)))
        #expect(path == TableWalkPath([HostPhysicalAddress(0x1000), HostPhysicalAddress(0x5000), HostPhysicalAddress(0x3000)]))
    }
}
