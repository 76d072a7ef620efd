import SLATArm64
import SLATCore

/// Stage-2 configurations the tests share: granule, IPA bits, PA bits, FEAT_LPA2.
enum TestConfigurations {
    /// One configuration per granule whose walk reaches every leaf height of
    /// the granule, the 52-bit PA layout of the 64 KiB granule (OA[51:48] in
    /// bits 15:12, 4 TiB blocks), and the FEAT_LPA2 layouts of the 4 and 16
    /// KiB granules (OA[51:50] in bits 9:8, 512 GiB and 64 GiB blocks).
    static let everyLeafLayout: [(TranslationGranule, Int, Int, Bool)] = [
        (.size4KiB, 48, 48, false), (.size4KiB, 40, 40, false), (.size16KiB, 48, 48, false),
        (.size64KiB, 48, 48, false), (.size64KiB, 52, 52, false),
        (.size4KiB, 52, 52, true), (.size16KiB, 52, 52, true), (.size4KiB, 48, 52, true),
    ]

    /// The format of a configuration.
    static func format(
        _ configuration: (TranslationGranule, Int, Int, Bool), executeNeverSplit: Bool = false
    ) throws -> StageTwoFormat {
        try StageTwoFormat(
            granule: configuration.0, inputAddressBits: configuration.1, outputAddressBits: configuration.2,
            executeNeverSplit: executeNeverSplit, lpa2: configuration.3)
    }

    /// The heights of `format` that hold leaves.
    static func leafLevels(_ format: StageTwoFormat) -> [Int] {
        (0...format.rootLevel).filter(format.canHoldLeaf)
    }
}
