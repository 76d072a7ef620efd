// libFuzzer target: bytes → a sequence of SLATCore table operations on a
// 4-level EPT table (A/D on) in a 64 MiB window, replayed by SLATSim's
// TableHarness, which checks the reference model, the simulated TLBs'
// detectors and the hardware walker after every operation. Built by
// Tests/Fuzz/run (not a package target: it needs -sanitize=fuzzer).
// Every input is valid: each 8-byte chunk decodes to one operation.
import SLATCore
import SLATSim
import SLATx86
#if canImport(Glibc)
import Glibc
#endif

let fuzzFormat = try! ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: true)
let fuzzWindow = GuestPhysicalRange(start: GuestPhysicalAddress(0), size: 64 << 20)

/// One operation from 8 bytes: kind, size class, position, permissions.
func decodeOperation(_ bytes: UnsafeRawBufferPointer) -> TableOperation {
    let word = bytes.loadUnaligned(as: UInt64.self)
    let kind = Int(word & 0x7)
    let sizes: [UInt64] = [0x1000, 0x4000, 0x1_0000, 0x20_0000, 0x40_0000]
    let size = sizes[Int((word >> 3) & 0x7) % sizes.count]
    let start = ((word >> 8) & 0xFFFF_FFFF) % ((64 << 20) / size) * size
    let range = GuestPhysicalRange(start: GuestPhysicalAddress(start), size: size)
    let output = HostPhysicalAddress(0x10_0000_0000 + start)
    let permissionSets: [Permissions] = [.read, .readWrite, .readExecute, .all]
    let permissions = permissionSets[Int((word >> 40) & 0x3)]
    let level = Int((word >> 42) & 0x3) % 3
    switch kind {
    case 0, 1: return .map(range, output: output, permissions: permissions, maximumLevel: level == 2 ? nil : level)
    case 2: return .unmap(range)
    case 3: return .protect(range, grant: (word >> 44) & 1 == 0 ? [] : .write, revoke: (word >> 45) & 1 == 0 ? .write : [])
    case 4: return .split(range, output: output, permissions: permissions, level: level == 2 ? 0 : level)
    case 5: return .merge(range, output: output, permissions: permissions)
    case 6: return .invalidate((word >> 46) & 1 == 0 ? range : nil)
    default:
        let kinds: [AccessKind] = [.read, .write, .executePrivileged]
        return .access(GuestPhysicalAddress(start + ((word >> 48) & 0xFFF)), kinds[Int((word >> 60) & 0x3) % 3],
                       vcpu: Int((word >> 62) & 1))
    }
}

func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 8 else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: data, count: min(size, 8 * 64))
    var operations: [TableOperation] = []
    var offset = 0
    while offset + 8 <= bytes.count {
        operations.append(decodeOperation(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + 8)])))
        offset += 8
    }
    if let problem = TableHarness.replay(operations, format: fuzzFormat, window: fuzzWindow, tablePages: 1024) {
        print("table operation fuzzer: \(problem)")
        for operation in operations { print("  \(operation)") }
        abort()
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(data, size)
}
