import SLATArm64
import SLATCore

/// Stage-2 configurations the tests share: granule, IPA bits, PA bits.
enum TestConfigurations {
    /// One configuration per granule whose walk reaches every leaf height of
    /// the granule, plus the 52-bit PA layout of the 64 KiB granule.
    static let everyLeafLayout: [(TranslationGranule, Int, Int)] = [
        (.size4KiB, 48, 48), (.size4KiB, 40, 40), (.size16KiB, 48, 48), (.size64KiB, 48, 48), (.size64KiB, 52, 52),
    ]

    /// The format of a configuration.
    static func format(
        _ configuration: (TranslationGranule, Int, Int), executeNeverSplit: Bool = false
    ) throws -> StageTwoFormat {
        try StageTwoFormat(
            granule: configuration.0, inputAddressBits: configuration.1, outputAddressBits: configuration.2,
            executeNeverSplit: executeNeverSplit)
    }

    /// The heights of `format` that hold leaves.
    static func leafLevels(_ format: StageTwoFormat) -> [Int] {
        (0...format.rootLevel).filter(format.canHoldLeaf)
    }
}
