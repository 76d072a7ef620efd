import SLATArm64
import SLATCore
import SLATSim
import SLATx86
import Testing

/// The simulated CPU's walker over both formats: permissions and leaf
/// sizes, accessed/dirty flags exactly when the hardware sets them, and
/// violations at the right level.
@Suite struct HardwareWalkerTests {
    @Test("Every encodable permission set at every leaf size grants exactly its accesses", arguments: SimFormat.allCases)
    func permissionsAtEveryLeafSize(_ simFormat: SimFormat) throws {
        try checkPermissions(simFormat.format, isEPT: simFormat.isEPT)
    }

    func checkPermissions<F: PageTableFormat>(_ format: F, isEPT: Bool) throws {
        for level in format.leafLevels {
            for permissions in format.encodablePermissions {
                let machine = try SimMachine(format, pages: 32)
                let size = format.entrySize(atLevel: level)
                let guest = size * 3
                let output = size * 5
                try machine.map(guest, size: size, to: output, permissions: permissions, maximumLevel: level)
                let probe = guest + size / 2 + 0x18
                for kind in AccessKind.allCases {
                    let result = machine.walker.walk(GuestPhysicalAddress(probe), for: kind, updatingFlags: false)
                    if permissions.contains(kind.requiredPermission) {
                        let leaf = try #require(result.translation, "\(permissions) level \(level) \(kind): \(result)")
                        #expect(leaf.level == level && leaf.size == size)
                        #expect(leaf.guestAddress.rawValue == guest)
                        #expect(leaf.output(of: GuestPhysicalAddress(probe)).rawValue == output + size / 2 + 0x18)
                        #expect(leaf.permissions == permissions)
                    } else {
                        let violation = try #require(result.violation, "\(permissions) level \(level) \(kind)")
                        let expectedKind: Violation.Kind = permissions.isEmpty && isEPT ? .notPresent : .permission
                        #expect(violation.kind == expectedKind, "\(permissions) \(kind)")
                        #expect(violation.level == level)
                        #expect(violation.address.rawValue == probe)
                        if expectedKind == .permission { #expect(violation.granted == permissions) }
                    }
                }
            }
        }
    }

    @Test("An Arm-profile TLB keeps a cached entry that fails a permission check and faults from it until it is invalidated")
    func armProfileKeepsEntryFailingPermissionCheck() throws {
        let machine = try SimMachine(try StageTwoFormat())
        #expect(machine.walker.profile.keepsEntriesFailingPermissionChecks)
        try machine.map(0x10_0000, size: 0x1000, to: 0x40_0000, permissions: .read)
        machine.access(0x10_0000, .read)
        // Made writable in place, without an invalidation.
        try machine.protect(0x10_0000, size: 0x1000, grant: .write, flushTo: ForgetfulTLB())
        #expect(machine.access(0x10_0000, .write).violation?.kind == .permission)
        #expect(machine.tlb.vcpu(0).entry(covering: GuestPhysicalAddress(0x10_0000))?.permissions == .read)
        machine.tlb.invalidate(address: GuestPhysicalAddress(0x10_0000), level: machine.format.leafLevel(ofHeight: 0))
        #expect(machine.access(0x10_0000, .write).output == HostPhysicalAddress(0x40_0000))
    }

    @Test("An Intel-profile TLB drops a cached entry that fails a permission check and re-walks")
    func intelProfileDropsEntryFailingPermissionCheck() throws {
        let machine = try SimMachine(try ExtendedPageTableFormat(accessedDirtyEnabled: false))
        #expect(!machine.walker.profile.keepsEntriesFailingPermissionChecks)
        try machine.map(0x10_0000, size: 0x1000, to: 0x40_0000, permissions: .read)
        machine.access(0x10_0000, .read)
        try machine.protect(0x10_0000, size: 0x1000, grant: .write, flushTo: ForgetfulTLB())
        #expect(machine.access(0x10_0000, .write).output == HostPhysicalAddress(0x40_0000))
    }

    @Test("A read sets only the accessed flag, a write also dirty, where the hardware updates flags",
          arguments: [SimFormat.eptAccessedDirty, .eptNoAccessedDirty, .ept5Level, .stageTwo4KiBHardwareAccessFlag, .stageTwo64KiB])
    func accessedAndDirtyFlags(_ simFormat: SimFormat) throws {
        try checkFlags(simFormat.format)
    }

    func checkFlags<F: PageTableFormat>(_ format: F) throws {
        let machine = try SimMachine(format)
        let page = format.pageSize
        let profile = machine.walker.profile
        try machine.map(0x40 * page, size: 2 * page, to: 0x80 * page, accessed: false)
        let before = machine.format.attributes(ofLeaf: machine.rawLeaf(0x40 * page), atLevel: 0)
        #expect(!before.accessed && !before.dirty)

        machine.access(0x40 * page, .read)
        let afterRead = machine.format.attributes(ofLeaf: machine.rawLeaf(0x40 * page), atLevel: 0)
        #expect(afterRead.accessed == (profile.accessFlag == .setByHardware))
        #expect(!afterRead.dirty)

        machine.access(0x41 * page, .write)
        let afterWrite = machine.format.attributes(ofLeaf: machine.rawLeaf(0x41 * page), atLevel: 0)
        #expect(afterWrite.accessed == (profile.accessFlag == .setByHardware))
        #expect(afterWrite.dirty == profile.setsDirtyFlag)
    }

    @Test("A write through an entry cached clean re-walks and sets dirty (EPT A/D)")
    func writeHitOnCleanEntrySetsDirty() throws {
        let machine = try SimMachine(SimFormat.eptAccessedDirty.format as! ExtendedPageTableFormat)
        try machine.map(0x10_0000, size: 0x1000, to: 0x20_0000)
        #expect(machine.access(0x10_0000, .read) == .translated(HostPhysicalAddress(0x20_0000), tlbHit: false))
        #expect(machine.access(0x10_0008, .read) == .translated(HostPhysicalAddress(0x20_0008), tlbHit: true))
        #expect(!machine.format.attributes(ofLeaf: machine.rawLeaf(0x10_0000), atLevel: 0).dirty)
        #expect(machine.access(0x10_0010, .write) == .translated(HostPhysicalAddress(0x20_0010), tlbHit: false))
        #expect(machine.format.attributes(ofLeaf: machine.rawLeaf(0x10_0000), atLevel: 0).dirty)
        #expect(machine.access(0x10_0018, .write) == .translated(HostPhysicalAddress(0x20_0018), tlbHit: true))
    }

    @Test("A faulting access sets no flag", arguments: [SimFormat.eptAccessedDirty, .stageTwo4KiBHardwareAccessFlag])
    func faultingAccessSetsNothing(_ simFormat: SimFormat) throws {
        try checkFaultSetsNothing(simFormat.format)
    }

    func checkFaultSetsNothing<F: PageTableFormat>(_ format: F) throws {
        let machine = try SimMachine(format)
        try machine.map(0x10_0000, size: 0x1000, to: 0x20_0000, permissions: .read, accessed: false)
        let before = machine.rawLeaf(0x10_0000)
        #expect(machine.access(0x10_0000, .write).violation?.kind == .permission)
        #expect(machine.rawLeaf(0x10_0000) == before)
    }

    @Test("Stage 2 without HA raises an access-flag fault at the leaf's level and leaves the flag clear")
    func accessFlagFault() throws {
        let format = SimFormat.stageTwo4KiB.format as! StageTwoFormat
        let machine = try SimMachine(format)
        try machine.map(0x20_0000, size: 0x20_0000, to: 0x4000_0000, accessed: false, maximumLevel: 1)
        let result = machine.access(0x20_1000, .read)
        #expect(result.violation == Violation(kind: .accessFlag, address: GuestPhysicalAddress(0x20_1000), access: .read, level: 1))
        #expect(!format.attributes(ofLeaf: machine.rawLeaf(0x20_0000), atLevel: 1).accessed)
        #expect(machine.tlb.vcpu(0).count == 0)
    }

    @Test("EPT sets the accessed flag of table entries only when the profile asks")
    func tableAccessedFlags() throws {
        let format = SimFormat.eptAccessedDirty.format as! ExtendedPageTableFormat
        for setsInTables in [false, true] {
            let machine = try SimMachine(format, profile: .intelEPT(accessedDirtyEnabled: true, setsAccessedFlagInTables: setsInTables))
            try machine.map(0x10_0000, size: 0x1000, to: 0x20_0000)
            machine.access(0x10_0000, .read)
            let rootEntry = machine.memory.entries(at: machine.table.root)[0].load(ordering: .relaxed)
            #expect((rootEntry & machine.walker.accessedMask != 0) == setsInTables)
            #expect(format.isTable(rootEntry, atLevel: format.rootLevel))
            #expect(machine.access(0x10_0000, .read, vcpu: 1).output == HostPhysicalAddress(0x20_0000))
        }
    }

    @Test("A not-present entry is reported at its level", arguments: SimFormat.allCases)
    func notPresentLevels(_ simFormat: SimFormat) throws {
        try checkNotPresentLevels(simFormat.format)
    }

    func checkNotPresentLevels<F: PageTableFormat>(_ format: F) throws {
        let machine = try SimMachine(format)
        let page = format.pageSize
        let empty = machine.walker.walk(GuestPhysicalAddress(0), for: .read)
        #expect(empty.violation?.kind == .notPresent && empty.violation?.level == format.rootLevel)
        try machine.map(0, size: page, to: 0x100 * page, maximumLevel: 0)
        // Same last-level table, another entry: level 0. Each higher level:
        // an address that shares the tables down to that level's table.
        for level in 0..<format.rootLevel {
            let address = format.entrySize(atLevel: level)
            let violation = machine.walker.walk(GuestPhysicalAddress(address), for: .read).violation
            #expect(violation?.kind == .notPresent && violation?.level == level, "level \(level): \(String(describing: violation))")
        }
    }

    @Test("An address beyond the input space is an address-size fault", arguments: SimFormat.allCases)
    func addressSizeFault(_ simFormat: SimFormat) throws {
        try checkAddressSize(simFormat.format)
    }

    func checkAddressSize<F: PageTableFormat>(_ format: F) throws {
        let machine = try SimMachine(format)
        let beyond = GuestPhysicalAddress(format.inputAddressSpaceSize)
        #expect(machine.walker.walk(beyond, for: .read).violation?.kind == .addressSize)
    }

    @Test("An EPT leaf with write but not read is a misconfiguration at its level")
    func eptWriteWithoutReadIsMisconfiguration() throws {
        let format = SimFormat.eptAccessedDirty.format as! ExtendedPageTableFormat
        let machine = try SimMachine(format)
        try machine.map(0x20_0000, size: 0x20_0000, to: 0x4000_0000, maximumLevel: 1)
        let (pointer, level) = machine.leafPointer(for: 0x20_0000)
        let entry = pointer.pointee.load(ordering: .relaxed)
        pointer.pointee.store(entry & ~1, ordering: .relaxed)  // clear R, keep W
        let violation = machine.access(0x20_0040, .read).violation
        #expect(violation?.kind == .misconfiguration)
        #expect(violation?.level == level && level == 1)
    }

    @Test("An EPT leaf with a reserved memory type is a misconfiguration")
    func eptReservedMemoryTypeIsMisconfiguration() throws {
        let format = SimFormat.eptAccessedDirty.format as! ExtendedPageTableFormat
        let machine = try SimMachine(format)
        try machine.map(0x1000, size: 0x1000, to: 0x4000_0000, maximumLevel: 0)
        let (pointer, _) = machine.leafPointer(for: 0x1000)
        let entry = pointer.pointee.load(ordering: .relaxed)
        pointer.pointee.store(entry & ~0x38 | (2 << 3), ordering: .relaxed)  // memory type 2: reserved
        #expect(machine.access(0x1000, .read).violation == Violation(kind: .misconfiguration, address: GuestPhysicalAddress(0x1000), access: .read, level: 0))
    }

    @Test("An access through a TLB fills it once and then hits", arguments: SimFormat.allCases)
    func fillThenHit(_ simFormat: SimFormat) throws {
        try checkFillThenHit(simFormat.format)
    }

    func checkFillThenHit<F: PageTableFormat>(_ format: F) throws {
        let machine = try SimMachine(format)
        let level = format.leafLevels[1]
        let size = format.entrySize(atLevel: level)
        try machine.map(size, size: size, to: 2 * size, maximumLevel: level)
        #expect(machine.access(size + 0x10, .read) == .translated(HostPhysicalAddress(2 * size + 0x10), tlbHit: false))
        #expect(machine.access(size + size - 8, .read) == .translated(HostPhysicalAddress(3 * size - 8), tlbHit: true))
        let entries = machine.tlb.vcpu(0).entries
        #expect(entries.count == 1 && entries.first?.level == level && entries.first?.path.count == format.rootLevel - level + 1)
        #expect(machine.tlb.vcpu(1).count == 0)
        let statistics = machine.tlb.vcpu(0).statistics
        #expect(statistics.hits == 1 && statistics.misses == 1 && statistics.fills == 1)
    }

    @Test("The last page of the input space walks through the last concatenated root table", arguments: SimFormat.allCases)
    func lastRootTable(_ simFormat: SimFormat) throws {
        try checkLastRootTable(simFormat.format)
    }

    func checkLastRootTable<F: PageTableFormat>(_ format: F) throws {
        let machine = try SimMachine(format)
        let last = format.inputAddressSpaceSize - format.pageSize
        try machine.map(last, size: format.pageSize, to: 0x40_0000_0000, maximumLevel: 0)
        let result = machine.access(last + 0x20, .read)
        #expect(result == .translated(HostPhysicalAddress(0x40_0000_0020), tlbHit: false))
        let path = try #require(machine.tlb.vcpu(0).entries.first?.path)
        let lastRootPage = machine.table.root.advanced(by: UInt64(format.rootTableCount - 1) * UInt64(format.tablePageSize))
        #expect(path[0] == lastRootPage)
        #expect(path.count == format.rootLevel + 1)
    }
}
