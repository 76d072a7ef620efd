import SLAT

/// Where the benchmark mapping lives: `size` bytes of guest-physical space
/// from ``guestBase`` mapped to consecutive host-physical addresses from
/// ``outputBase``, with pages of ``pageSize`` bytes.
struct MappingGeometry: Sendable {
    /// First guest address: 4 GiB, above a PC's low-memory hole, 1 GiB aligned.
    static let defaultGuestBase: UInt64 = 0x1_0000_0000
    /// First output address: 128 GiB, so output differs from input.
    static let defaultOutputBase: UInt64 = 0x20_0000_0000
    /// The attributes every benchmark mapping grants: read, write and
    /// execute, write-back, accessed.
    static let attributes = LeafAttributes(permissions: .all)
    /// The most table memory one benchmark table may need (4 GiB).
    static let tableMemoryLimit: UInt64 = 4 << 30

    /// First guest address mapped.
    let guestBase: UInt64
    /// Output address of `guestBase`.
    let outputBase: UInt64
    /// Bytes mapped.
    let size: UInt64
    /// Bytes in one smallest page of the format.
    let pageSize: UInt64

    /// The geometry for `size` bytes of `pageSize` pages at the default bases.
    init(size: UInt64, pageSize: UInt64) {
        self.guestBase = Self.defaultGuestBase
        self.outputBase = Self.defaultOutputBase
        self.size = size
        self.pageSize = pageSize
    }

    /// Pages in the mapping.
    var pageCount: Int { Int(size / pageSize) }

    /// The first guest address after the mapping.
    var guestEnd: UInt64 { guestBase + size }

    /// The mapped range.
    var range: GuestPhysicalRange {
        GuestPhysicalRange(start: GuestPhysicalAddress(guestBase), size: size)
    }

    /// The output address the mapping gives `guest` (inside the range).
    @inline(__always)
    func expectedOutput(of guest: UInt64) -> UInt64 { outputBase &+ (guest &- guestBase) }

    /// Table memory a mapping of smallest pages needs, roughly: one 8-byte
    /// entry per page.
    var approximateTableBytes: UInt64 { size / pageSize * 8 }

    /// Throws a usage failure unless `size` suits `format`: a positive
    /// multiple of its page, inside its input address space, and within
    /// ``tableMemoryLimit``.
    static func check(size: UInt64, for format: BenchFormat) throws(BenchFailure) {
        let geometry = MappingGeometry(size: size, pageSize: format.pageSize)
        guard size >= format.pageSize, size % format.pageSize == 0 else {
            throw .usage("--size \(ByteSize.format(size)) is not a positive multiple of the \(format.rawValue) page size (\(ByteSize.format(format.pageSize)))")
        }
        guard geometry.approximateTableBytes <= tableMemoryLimit else {
            throw .usage("--size \(ByteSize.format(size)) needs about \(ByteSize.format(geometry.approximateTableBytes)) of \(format.rawValue) tables; the limit is \(ByteSize.format(tableMemoryLimit))")
        }
        guard size <= UInt64.max - defaultGuestBase else {
            throw .usage("--size \(ByteSize.format(size)) overflows the guest address space")
        }
        _ = try format.inputAddressBits(coveringGuestEnd: geometry.guestEnd)
    }

    /// Table pages below the root that a mapping of the whole range with
    /// smallest pages links: at each height, one table per block of the
    /// next height up that the range touches.
    func tablePagesBelowRoot<Format: PageTableFormat>(for format: Format) -> Int {
        var total = 0
        for height in 0..<format.rootLevel {
            let shift = UInt64(format.shift(atLevel: height + 1))
            total += Int(((guestEnd - 1) >> shift) - (guestBase >> shift)) + 1
        }
        return total
    }
}
