/// The raw bytes of a table image and the physical address of its first
/// byte. Every read is bounds-checked: nothing in the bytes is trusted.
public struct TableImage: Sendable {
    /// The image (`tables.bin`).
    public let bytes: [UInt8]
    /// Physical address of `bytes[0]`.
    public let base: UInt64

    /// An image of `bytes` starting at physical `base`.
    public init(bytes: [UInt8], base: UInt64) {
        self.bytes = bytes
        self.base = base
    }

    /// Whether `[address, address + length)` lies inside the image.
    public func contains(_ address: UInt64, length: UInt64) -> Bool {
        guard address >= base else { return false }
        let offset = address - base
        return offset <= UInt64(bytes.count) && length <= UInt64(bytes.count) - offset
    }

    /// The little-endian 64-bit word at physical `address`, or `nil` when it
    /// is not (wholly) inside the image.
    public func word(at address: UInt64) -> UInt64? {
        guard contains(address, length: 8) else { return nil }
        let offset = Int(address - base)
        var value: UInt64 = 0
        for byte in 0..<8 { value |= UInt64(bytes[offset + byte]) << UInt64(8 * byte) }
        return value
    }

    /// Physical address one past the last byte.
    public var end: UInt64 { base &+ UInt64(bytes.count) }
}
