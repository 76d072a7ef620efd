/// The order in which the translate workload visits addresses.
enum AccessPattern: String, Sendable {
    /// Addresses drawn uniformly from the range by SplitMix64 (any byte offset).
    case random
    /// One address per page, page after page, wrapping at the end of the range.
    case sequential

    /// The `count` guest addresses of this pattern over `geometry`,
    /// precomputed so the timed loop pays no generator cost.
    func addresses(count: Int, over geometry: MappingGeometry) -> [UInt64] {
        var addresses = [UInt64]()
        addresses.reserveCapacity(count)
        switch self {
        case .random:
            var generator = SplitMix64(seed: 0x51A7_BE4C_0000_0001)
            for _ in 0..<count {
                addresses.append(geometry.guestBase &+ generator.next(below: geometry.size))
            }
        case .sequential:
            let pages = UInt64(geometry.pageCount)
            for index in 0..<UInt64(count) {
                // A fixed offset inside the page so the output carries it too.
                addresses.append(geometry.guestBase &+ (index % pages) &* geometry.pageSize &+ 0x88)
            }
        }
        return addresses
    }
}
