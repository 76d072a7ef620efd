import SLATCore
import SLATx86
import SLATArm64

/// Everything needed to build or read a table image: the format and its
/// options, and the physical address of the image's first byte.
public struct ImageConfiguration: Hashable, Sendable {
    /// The format by its command-line name.
    public var kind: TableFormatKind
    /// Stage 2: the IPA size (`--ipa-bits`). EPT: 48 or 57, set by the kind.
    public var inputAddressBits: Int
    /// The output (host-physical) address size (`--pa-bits`).
    public var outputAddressBits: Int
    /// Physical address of byte 0 of the image (`--base`).
    public var base: UInt64
    /// EPT mode-based execute control (`--mbec`).
    public var modeBasedExecute: Bool
    /// Stage-2 FEAT_XNX split execute-never (`--xnx`).
    public var executeNeverSplit: Bool
    /// Stage-2 FEAT_S2FWB with `HCR_EL2.FWB` = 1 (`--fwb`): leaves use the
    /// FWB MemAttr encodings (normal write-back 0b0110; write-through has
    /// none).
    public var forcedWriteBack: Bool
    /// Stage-2 FEAT_LPA2 descriptors, `VTCR_EL2.DS` = 1 (`--lpa2`): 52-bit
    /// IPAs and PAs with the 4 and 16 KiB granules, OA[51:50] in bits 9:8.
    public var lpa2: Bool
    /// Stage 2: the Arm ARM start level (`--start-level`, −1...3), or `nil`
    /// for SLAT's choice (the fewest levels, up to 16 concatenated tables).
    public var startLevel: Int?

    /// A configuration with the contract's defaults for everything not given.
    public init(
        kind: TableFormatKind, inputAddressBits: Int? = nil, outputAddressBits: Int = 48,
        base: UInt64? = nil, modeBasedExecute: Bool = false, executeNeverSplit: Bool = false,
        forcedWriteBack: Bool = false, lpa2: Bool = false, startLevel: Int? = nil
    ) {
        self.kind = kind
        self.inputAddressBits = kind.isEPT ? kind.defaultInputAddressBits : (inputAddressBits ?? kind.defaultInputAddressBits)
        self.outputAddressBits = outputAddressBits
        self.base = base ?? kind.defaultBase
        self.modeBasedExecute = modeBasedExecute
        self.executeNeverSplit = executeNeverSplit
        self.forcedWriteBack = forcedWriteBack
        self.lpa2 = lpa2
        self.startLevel = startLevel
    }

    /// The format this configuration describes.
    ///
    /// - Throws: ``ImageError/invalidConfiguration(_:)`` naming what the
    ///   format rejected (IPA or PA size, start level, or an option of the
    ///   other architecture).
    public func makeFormat() throws(ImageError) -> ImageFormat {
        do {
            switch kind {
            case .ept4, .ept5, .ept4AccessedDirty, .ept5AccessedDirty:
                if executeNeverSplit { throw ImageError.invalidConfiguration("--xnx applies to stage-2 formats only") }
                if forcedWriteBack { throw ImageError.invalidConfiguration("--fwb applies to stage-2 formats only") }
                if lpa2 { throw ImageError.invalidConfiguration("--lpa2 applies to stage-2 formats only") }
                if startLevel != nil { throw ImageError.invalidConfiguration("--start-level applies to stage-2 formats only") }
                let levels = kind == .ept5 || kind == .ept5AccessedDirty ? 5 : 4
                let ad = kind == .ept4AccessedDirty || kind == .ept5AccessedDirty
                return .ept(try ExtendedPageTableFormat(
                    levelCount: levels, outputAddressBits: outputAddressBits,
                    modeBasedExecute: modeBasedExecute, accessedDirtyEnabled: ad))
            case .stageTwo4K, .stageTwo16K, .stageTwo64K:
                if modeBasedExecute { throw ImageError.invalidConfiguration("--mbec applies to EPT formats only") }
                if lpa2 && kind == .stageTwo64K {
                    throw ImageError.invalidConfiguration("--lpa2 applies to the 4K and 16K granules (s2-64k has 52-bit addresses without it)")
                }
                let granule: TranslationGranule = switch kind {
                case .stageTwo16K: .size16KiB
                case .stageTwo64K: .size64KiB
                default: .size4KiB
                }
                return .stageTwo(try StageTwoFormat(
                    granule: granule, inputAddressBits: inputAddressBits, outputAddressBits: outputAddressBits,
                    executeNeverSplit: executeNeverSplit, lpa2: lpa2, startLevel: startLevel)
                    .forcingWriteBack(forcedWriteBack))
            }
        } catch let error as ImageError {
            throw error
        } catch let error as SLATError {
            throw .invalidConfiguration("\(kind.rawValue): " + ImageError.describe(error))
        } catch {
            throw .invalidConfiguration("\(error)")
        }
    }
}
