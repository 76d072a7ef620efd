/// A leaf translation found by a table walk.
@frozen
public struct Translation: Hashable, Sendable {
    /// Output address of the queried guest address.
    public var output: HostPhysicalAddress
    /// First guest address the leaf maps.
    public var leafAddress: GuestPhysicalAddress
    /// Output address of the whole leaf.
    public var leafOutput: HostPhysicalAddress
    /// Level of the leaf (height; 0 = smallest page).
    public var level: Int
    /// Bytes the leaf maps.
    public var size: UInt64
    /// The leaf's attributes.
    public var attributes: LeafAttributes
    /// The raw leaf entry.
    public var entry: UInt64

    @inlinable
    public init(output: HostPhysicalAddress, leafAddress: GuestPhysicalAddress, leafOutput: HostPhysicalAddress,
                level: Int, size: UInt64, attributes: LeafAttributes, entry: UInt64) {
        self.output = output
        self.leafAddress = leafAddress
        self.leafOutput = leafOutput
        self.level = level
        self.size = size
        self.attributes = attributes
        self.entry = entry
    }
}

/// The outcome of translating one guest address through the tables.
public enum TranslationResult: Hashable, Sendable {
    /// A present leaf maps the address.
    case mapped(Translation)
    /// The walk met a non-present entry at `level` (height).
    case notPresent(level: Int)
    /// The address is beyond the input address space (hardware: address size fault).
    case outsideAddressSpace

    /// The translation, if mapped.
    @inlinable
    public var translation: Translation? {
        if case .mapped(let translation) = self { return translation }
        return nil
    }
}

/// One leaf of the tables, as enumerated by ``PageTable/leaves(in:)``.
@frozen
public struct LeafMapping: Hashable, Sendable {
    /// First guest address of the leaf.
    public var guestAddress: GuestPhysicalAddress
    /// Level (height) of the leaf.
    public var level: Int
    /// Bytes the leaf maps.
    public var size: UInt64
    /// Output address of the leaf.
    public var output: HostPhysicalAddress
    /// Attributes of the leaf.
    public var attributes: LeafAttributes

    @inlinable
    public init(guestAddress: GuestPhysicalAddress, level: Int, size: UInt64, output: HostPhysicalAddress, attributes: LeafAttributes) {
        self.guestAddress = guestAddress
        self.level = level
        self.size = size
        self.output = output
        self.attributes = attributes
    }
}
