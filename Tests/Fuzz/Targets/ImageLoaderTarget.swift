// The image-loader fuzz target's body: arbitrary bytes as a table image
// that `slat dump`, `slat translate` and `slat svg` read, with the format,
// its options, the root and the probed addresses taken from the first
// bytes (the values a registers file would give). Reading may refuse the
// input with a typed ImageError; it must never trap, hang or touch memory
// it does not own (AddressSanitizer in the libFuzzer build). Run by
// Tests/Fuzz/ImageLoaderFuzzer.swift and, for every committed corpus
// input, by FuzzCorpusTests.
import SLATImage

/// The image-loader target.
public enum ImageLoaderTarget {
    /// Reads a little-endian word at `offset` (zero past the end).
    static func word(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in 0..<8 where offset + index < bytes.count {
            value |= UInt64(bytes[offset + index]) << (8 * UInt64(index))
        }
        return value
    }

    /// Reads `bytes` as a header and an image, and renders it every way;
    /// a trap is the failure.
    public static func run(_ input: UnsafeRawBufferPointer) {
        // Header: kind, flags, IPA bits, PA bits, start level, then the
        // root's offset in the image and two guest addresses to translate.
        let header = 5 + 3 * 8
        let size = input.count
        guard size >= header else { return }
        let kinds = TableFormatKind.allCases
        let kind = kinds[Int(input[0]) % kinds.count]
        let flags = input[1]
        let paChoices = [32, 36, 40, 42, 44, 48, 52]
        var configuration = ImageConfiguration(
            kind: kind, inputAddressBits: 32 + Int(input[2]) % 21,
            outputAddressBits: paChoices[Int(input[3]) % paChoices.count],
            modeBasedExecute: flags & 1 != 0, executeNeverSplit: flags & 2 != 0, forcedWriteBack: flags & 4 != 0,
            lpa2: flags & 8 != 0, startLevel: flags & 16 != 0 ? Int(input[4] % 5) - 1 : nil)
        if kind.isEPT {
            configuration.executeNeverSplit = false
            configuration.forcedWriteBack = false
            configuration.lpa2 = false
            configuration.startLevel = nil
        }
        guard let format = try? configuration.makeFormat() else { return }
        let image = TableImage(bytes: Array(input[header...]), base: configuration.base)
        let root = configuration.base &+ word(input, 5) % UInt64(max(1, size - header))
        guard let walker = try? ImageWalker(format: format, image: image, root: root) else { return }
        _ = ImageDumper(walker: walker).render()
        let translator = ImageTranslator(walker: walker)
        for guest in [word(input, 13), word(input, 21), 0] {
            _ = translator.line(for: guest)
            _ = translator.line(for: guest, access: .write)
        }
        _ = ImageSVGRenderer(walker: walker, maximumRows: 64).render()
    }
}
