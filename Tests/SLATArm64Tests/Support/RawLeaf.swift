import SLATArm64
import SLATCore

/// The raw descriptor of the leaf mapping `address`, found by walking the
/// tables as the hardware does; `nil` when nothing maps it.
func rawLeaf<Memory: TableMemory>(_ table: PageTable<StageTwoFormat, Memory>, _ address: GuestPhysicalAddress) -> UInt64? {
    let format = table.format
    var level = format.rootLevel
    let rootIndex = format.index(of: address, atLevel: level)
    var page = table.root.advanced(by: UInt64(rootIndex / format.entriesPerTable) * UInt64(format.tablePageSize))
    var index = rootIndex % format.entriesPerTable
    while true {
        let entry = table.memory.entries(at: page)[index].load(ordering: .acquiring)
        if !format.isPresent(entry, atLevel: level) { return nil }
        if level > 0 && format.isTable(entry, atLevel: level) {
            page = format.childTable(of: entry)
            level -= 1
            index = format.index(of: address, atLevel: level)
            continue
        }
        return entry
    }
}
