// The table-operation fuzz target's body: bytes → a sequence of SLATCore
// table operations on a 4-level EPT table (A/D on) in a 64 MiB window,
// replayed by SLATSim's TableHarness, which checks the reference model,
// the simulated TLBs' detectors and the hardware walker after every
// operation. Every input is valid: each 8-byte chunk decodes to one
// operation. Run by the libFuzzer entry (Tests/Fuzz/TableOperationFuzzer.swift)
// and, for every committed corpus input, by FuzzCorpusTests.
import SLATCore
import SLATSim
import SLATx86

/// The table-operation target.
public enum TableOperationTarget {
    static let format = try! ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: true)
    static let window = GuestPhysicalRange(start: GuestPhysicalAddress(0), size: 64 << 20)

    /// One operation from 8 bytes: kind, size class, position, permissions.
    public static func decodeOperation(_ bytes: UnsafeRawBufferPointer) -> TableOperation {
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

    /// Decodes `bytes` (at most 64 operations) and replays them; returns
    /// what went wrong, with the operations, or `nil`.
    public static func run(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard bytes.count >= 8 else { return nil }
        let bytes = UnsafeRawBufferPointer(rebasing: bytes[0..<min(bytes.count, 8 * 64)])
        var operations: [TableOperation] = []
        var offset = 0
        while offset + 8 <= bytes.count {
            operations.append(decodeOperation(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + 8)])))
            offset += 8
        }
        guard let problem = TableHarness.replay(operations, format: format, window: window, tablePages: 1024) else {
            return nil
        }
        return (["table operation fuzzer: \(problem)"] + operations.map { "  \($0)" }).joined(separator: "\n")
    }
}
