import SLATCore

/// The bytes behind host frames: a model of host physical memory, 4 KiB per
/// `HostFrameNumber`, allocated (zeroed) on first use and kept until the
/// object goes away.
///
/// `HostPageMap` only says which host frame backs a host-virtual page; a
/// pfn cache needs bytes to hand its users, so it maps the frame it resolved
/// through this model. The address of a frame's bytes never changes, so a
/// pointer stays usable for as long as the memory object lives — but a pfn
/// cache user may only dereference it inside ``PfnCache``'s accessor, while
/// the mapping is valid.
///
/// Locking contract: internally locked (a reader-writer spin lock around the
/// frame table, held briefly; lookups of allocated frames share it); every method may be called from any thread. The bytes themselves
/// are not synchronised: writers and readers of the same frame must order
/// their accesses themselves (pfn cache users do so through the cache's lock
/// and the host map's notifier).
public final class HostFrameMemory: Sendable {
    /// Bytes per host frame.
    public static let frameBytes = 1 << Int(frameShift)

    /// Host frame number → address of its bytes (a bit pattern, so that the
    /// table is `Sendable`; the memory is owned by this object).
    private let frames = ReaderWriterLocked<[UInt64: UInt]>([:])

    /// Memory with no frame allocated yet.
    public init() {}

    deinit {
        frames.write { table in
            for address in table.values {
                UnsafeMutableRawPointer(bitPattern: address)?.deallocate()
            }
            table.removeAll()
        }
    }

    /// The first byte of `frame` (4 KiB, 4 KiB-aligned), allocated zeroed on
    /// first use. Stable for the life of this object.
    public func bytes(of frame: HostFrameNumber) -> UnsafeMutableRawPointer {
        let known = frames.read { table in table[frame.rawValue] }
        let address = known ?? frames.write { table -> UInt in
            if let address = table[frame.rawValue] { return address }
            let bytes = UnsafeMutableRawPointer.allocate(byteCount: Self.frameBytes, alignment: Self.frameBytes)
            bytes.initializeMemory(as: UInt8.self, repeating: 0, count: Self.frameBytes)
            let address = UInt(bitPattern: bytes)
            table[frame.rawValue] = address
            return address
        }
        // Not reachable: the address is that of a live allocation.
        guard let bytes = UnsafeMutableRawPointer(bitPattern: address) else {
            preconditionFailure("allocation returned a null pointer")
        }
        return bytes
    }

    /// How many frames have bytes so far.
    public var allocatedFrameCount: Int { frames.read { $0.count } }
}
