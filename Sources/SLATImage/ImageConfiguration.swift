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

    /// A configuration with the contract's defaults for everything not given.
    public init(
        kind: TableFormatKind, inputAddressBits: Int? = nil, outputAddressBits: Int = 48,
        base: UInt64? = nil, modeBasedExecute: Bool = false, executeNeverSplit: Bool = false,
        forcedWriteBack: Bool = false
    ) {
        self.kind = kind
        self.inputAddressBits = kind.isEPT ? kind.defaultInputAddressBits : (inputAddressBits ?? kind.defaultInputAddressBits)
        self.outputAddressBits = outputAddressBits
        self.base = base ?? kind.defaultBase
        self.modeBasedExecute = modeBasedExecute
        self.executeNeverSplit = executeNeverSplit
        self.forcedWriteBack = forcedWriteBack
    }

    /// The format this configuration describes.
    ///
    /// - Throws: ``ImageError/invalidConfiguration(_:)`` naming what the
    ///   format rejected (IPA or PA size, or an option of the other architecture).
    public func makeFormat() throws(ImageError) -> ImageFormat {
        do {
            switch kind {
            case .ept4, .ept5, .ept4AccessedDirty, .ept5AccessedDirty:
                if executeNeverSplit { throw ImageError.invalidConfiguration("--xnx applies to stage-2 formats only") }
                if forcedWriteBack { throw ImageError.invalidConfiguration("--fwb applies to stage-2 formats only") }
                let levels = kind == .ept5 || kind == .ept5AccessedDirty ? 5 : 4
                let ad = kind == .ept4AccessedDirty || kind == .ept5AccessedDirty
                return .ept(try ExtendedPageTableFormat(
                    levelCount: levels, outputAddressBits: outputAddressBits,
                    modeBasedExecute: modeBasedExecute, accessedDirtyEnabled: ad))
            case .stageTwo4K, .stageTwo16K, .stageTwo64K:
                if modeBasedExecute { throw ImageError.invalidConfiguration("--mbec applies to EPT formats only") }
                let granule: TranslationGranule = switch kind {
                case .stageTwo16K: .size16KiB
                case .stageTwo64K: .size64KiB
                default: .size4KiB
                }
                return .stageTwo(try StageTwoFormat(
                    granule: granule, inputAddressBits: inputAddressBits, outputAddressBits: outputAddressBits,
                    executeNeverSplit: executeNeverSplit).forcingWriteBack(forcedWriteBack))
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
