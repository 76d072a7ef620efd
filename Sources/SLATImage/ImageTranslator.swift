import SLATCore

/// The access a translation is checked for (`--access`).
public enum ImageAccess: String, Sendable, CaseIterable {
    /// Data read.
    case read = "r"
    /// Data write.
    case write = "w"
    /// Instruction fetch by privileged code (EPT supervisor, Arm EL1); both
    /// rights are the same without MBEC / FEAT_XNX.
    case execute = "x"
    /// Same as ``execute``: privileged fetch, named explicitly.
    case executePrivileged = "s"
    /// Instruction fetch by user code (EPT user mode with MBEC, Arm EL0).
    case executeUser = "u"

    var permission: Permissions {
        switch self {
        case .read: .read
        case .write: .write
        case .execute, .executePrivileged: .executePrivileged
        case .executeUser: .executeUser
        }
    }
}

/// Why a translation fails.
public enum ImageFaultKind: String, Hashable, Sendable {
    /// A non-present entry (EPT violation / stage-2 translation fault),
    /// including a stage-2 descriptor of a reserved type.
    case notPresent = "not-present"
    /// The leaf does not grant the access (`--access`).
    case permission
    /// EPT misconfiguration: reserved bits, write without read, reserved
    /// memory type. For stage 2 the tool reports RES0 bits set this way
    /// (the architecture leaves their effect CONSTRAINED UNPREDICTABLE).
    case misconfiguration
    /// Stage 2: a table or output address beyond the PA size.
    case addressSize = "address-size"
    /// Stage 2: the leaf's access flag is clear (`--access` given). Checked
    /// before the permissions, as the Arm ARM prioritises the faults.
    case accessFlag = "access-flag"
    /// The walk needs a table that is not in the image.
    case outsideImage = "outside-image"
    /// The address is beyond the input address space.
    case outsideAddressSpace = "outside-address-space"
}

/// The outcome of translating one guest address through an image.
public enum ImageTranslation: Hashable, Sendable {
    /// Mapped: the output address and the leaf.
    case mapped(output: UInt64, leaf: ImageLeaf)
    /// A fault at height `level`.
    case fault(ImageFaultKind, level: Int)
}

/// Translates guest addresses through an image as the hardware walker
/// would, reading only bounds-checked bytes.
public struct ImageTranslator: Sendable {
    /// The walker giving the format, image and root.
    public let walker: ImageWalker

    /// A translator over the walker's image.
    public init(walker: ImageWalker) { self.walker = walker }

    /// Translates `guest`; with `access`, also checks the permission (and
    /// the stage-2 access flag) the way the access would.
    public func translate(_ guest: UInt64, access: ImageAccess? = nil) -> ImageTranslation {
        let format = walker.format
        let geometry = format.geometry
        guard guest < geometry.inputAddressSpaceSize else { return .fault(.outsideAddressSpace, level: geometry.rootLevel) }
        var table = walker.root
        var level = geometry.rootLevel
        while true {
            let index = geometry.index(of: GuestPhysicalAddress(guest), atLevel: level)
            let entryAddress = table + UInt64(index * 8)
            guard let entry = walker.image.word(at: entryAddress) else { return .fault(.outsideImage, level: level) }
            switch format.classify(entry, atLevel: level) {
            case .invalid, .softwareOnlyLeaf:
                return .fault(.notPresent, level: level)
            case .malformed(let problem):
                switch problem {
                case .reservedDescriptorType: return .fault(.notPresent, level: level)
                case .addressBeyondOutputSize: return .fault(.addressSize, level: level)
                default: return .fault(.misconfiguration, level: level)
                }
            case .table(let child):
                guard walker.image.contains(child, length: UInt64(geometry.tablePageSize)) else {
                    return .fault(.outsideImage, level: level - 1)
                }
                table = child
                level -= 1
            case .leaf(let output):
                let size = geometry.entrySize(atLevel: level)
                let attributes = geometry.attributes(ofLeaf: entry, atLevel: level)
                let leaf = ImageLeaf(
                    guest: guest & ~(size - 1), level: level, size: size, output: output, attributes: attributes,
                    entry: entry, entryAddress: entryAddress, isPresentToHardware: true)
                if let access {
                    // The Arm ARM checks the access flag before the permissions.
                    if !format.isEPT && !attributes.accessed { return .fault(.accessFlag, level: level) }
                    if !attributes.permissions.contains(access.permission) { return .fault(.permission, level: level) }
                }
                return .mapped(output: output + (guest & (size - 1)), leaf: leaf)
            }
        }
    }

    /// One line of `slat translate` output:
    /// `0x<guest> -> 0x<output> level=<L> size=<S> perms=<p> type=<t> [accessed] [dirty]`
    /// or `0x<guest> fault=<kind> level=<L>`, levels as the architecture numbers them.
    public func line(for guest: UInt64, access: ImageAccess? = nil) -> String {
        let format = walker.format
        switch translate(guest, access: access) {
        case .mapped(let output, let leaf):
            var text = "\(NumberSyntax.hex(guest)) -> \(NumberSyntax.hex(output)) level=\(format.architecturalLevel(leaf.level))"
                + " size=\(NumberSyntax.size(leaf.size)) perms=\(leaf.attributes.permissions)"
                + " type=\(format.name(of: leaf.attributes.memoryType))"
            if leaf.attributes.accessed { text += " accessed" }
            if leaf.attributes.dirty { text += " dirty" }
            return text
        case .fault(let kind, let level):
            return "\(NumberSyntax.hex(guest)) fault=\(kind.rawValue) level=\(format.architecturalLevel(level))"
        }
    }
}
