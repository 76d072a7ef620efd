/// The table formats the `slat` tool builds and reads, by their command-line names.
public enum TableFormatKind: String, CaseIterable, Sendable {
    /// Intel EPT, 4-level walk, accessed/dirty flags off in the EPTP.
    case ept4
    /// Intel EPT, 5-level walk, accessed/dirty flags off in the EPTP.
    case ept5
    /// Intel EPT, 4-level walk, EPTP enables accessed/dirty flags (bit 6).
    case ept4AccessedDirty = "ept4-ad"
    /// Intel EPT, 5-level walk, EPTP enables accessed/dirty flags (bit 6).
    case ept5AccessedDirty = "ept5-ad"
    /// Arm stage 2 with the 4 KiB granule.
    case stageTwo4K = "s2-4k"
    /// Arm stage 2 with the 16 KiB granule.
    case stageTwo16K = "s2-16k"
    /// Arm stage 2 with the 64 KiB granule.
    case stageTwo64K = "s2-64k"

    /// Whether this is an EPT format.
    public var isEPT: Bool {
        switch self {
        case .ept4, .ept5, .ept4AccessedDirty, .ept5AccessedDirty: true
        default: false
        }
    }

    /// The default physical base of `tables.bin`: 0x4000_0000 for EPT, 0x4800_0000 for stage 2.
    public var defaultBase: UInt64 { isEPT ? 0x4000_0000 : 0x4800_0000 }

    /// The default IPA size: 40 bits, 42 with the 64 KiB granule (EPT: 48 or 57, fixed).
    public var defaultInputAddressBits: Int {
        switch self {
        case .ept4, .ept4AccessedDirty: 48
        case .ept5, .ept5AccessedDirty: 57
        case .stageTwo64K: 42
        default: 40
        }
    }

    /// The names, for usage messages: `ept4|ept5|...`.
    public static var names: String { allCases.map(\.rawValue).joined(separator: "|") }
}
