import Testing
import SLATCore
import SLATx86
import SLATArm64
import SLATImage

@Suite("Dump and translate of corrupted images")
struct CorruptedImageTests {
    /// An image with one page at guest 0 and one block (2M, 32M or 512M) at
    /// the block size, and the two leaf entries' addresses.
    func sample(_ kind: TableFormatKind) throws -> (image: BuiltImage, walker: ImageWalker, pageEntry: UInt64, blockEntry: UInt64) {
        let geometry = try ImageConfiguration(kind: kind).makeFormat().geometry
        let block = geometry.entrySize(atLevel: 1)
        let script = "0x0 \(geometry.pageSize) 0x80000000 rw wb\n\(block) \(block) 0xA0000000 rw wb"
        let (image, walker) = try buildImage(script, ImageConfiguration(kind: kind))
        let leaves = walker.contents().leaves
        return (image, walker, leaves[0].entryAddress, leaves[1].entryAddress)
    }

    /// The single fatal finding of `bytes`, after checking the dump names it.
    func onlyFinding(_ bytes: [UInt8], like image: BuiltImage) throws -> ImageFinding? {
        let walker = try walker(over: bytes, like: image)
        let findings = walker.contents().findings.filter(\.problem.isFatal)
        let (text, malformed) = ImageDumper(walker: walker).render()
        #expect(malformed == findings.count)
        for finding in findings {
            #expect(text.contains("!! malformed"))
            #expect(text.contains("at \(NumberSyntax.hex(finding.entryAddress))"))
        }
        #expect(findings.count == 1)
        return findings.first
    }

    @Test("EPT reserved bits in a leaf are reported with the entry's address and mask")
    func eptReservedBitsInLeaf() throws {
        let (image, _, _, block) = try sample(.ept4)
        var bytes = image.bytes
        let entry = peek(bytes, base: image.configuration.base, at: block)
        poke(&bytes, base: image.configuration.base, at: block, entry | 1 << 13)   // inside 20:12 of a 2M leaf
        let finding = try #require(try onlyFinding(bytes, like: image))
        #expect(finding.problem == .reservedBits(1 << 13))
        #expect(finding.entryAddress == block && finding.guest == 2 << 20 && finding.level == 1)
        #expect(ImageTranslator(walker: try walker(over: bytes, like: image)).translate(0x200000) == .fault(.misconfiguration, level: 1))
    }

    @Test("EPT address bits beyond the PA size are reserved")
    func eptAddressBeyondPhysicalSize() throws {
        let (image, _, page, _) = try sample(.ept4)
        var bytes = image.bytes
        poke(&bytes, base: image.configuration.base, at: page, peek(bytes, base: image.configuration.base, at: page) | 1 << 50)
        #expect(try onlyFinding(bytes, like: image)?.problem == .reservedBits(1 << 50))
    }

    @Test("EPT reserved memory type and write-without-read are misconfigurations")
    func eptMisconfigurations() throws {
        let (image, _, page, block) = try sample(.ept4)
        let base = image.configuration.base
        var bytes = image.bytes
        poke(&bytes, base: base, at: page, peek(bytes, base: base, at: page) & ~0x38 | 2 << 3)
        #expect(try onlyFinding(bytes, like: image)?.problem == .reservedMemoryType(2))
        bytes = image.bytes
        poke(&bytes, base: base, at: block, peek(bytes, base: base, at: block) & ~ExtendedPageTableBits.read)
        #expect(try onlyFinding(bytes, like: image)?.problem == .writeWithoutRead)
    }

    @Test("A page-size bit in an EPT PML4 entry is reserved")
    func eptLargePageAtRoot() throws {
        let (image, _, _, _) = try sample(.ept4)
        var bytes = image.bytes
        poke(&bytes, base: image.configuration.base, at: image.root, peek(bytes, base: image.configuration.base, at: image.root) | 1 << 7)
        let finding = try #require(try onlyFinding(bytes, like: image))
        #expect(finding.problem == .reservedBits(1 << 7) && finding.level == 3 && finding.index == 0)
    }

    @Test("A table entry pointing outside the image is named, not followed", arguments: allFormatKinds)
    func tableOutsideImage(kind: TableFormatKind) throws {
        let (image, _, _, _) = try sample(kind)
        let format = try image.configuration.makeFormat()
        var bytes = image.bytes
        let outside = image.configuration.base + UInt64(image.bytes.count) + UInt64(format.geometry.tablePageSize) * 4
        poke(&bytes, base: image.configuration.base, at: image.root, format.geometry.tableEntry(child: HostPhysicalAddress(outside)))
        let finding = try #require(try onlyFinding(bytes, like: image))
        #expect(finding.problem == .tableOutsideImage(outside))
        #expect(finding.entryAddress == image.root && finding.guest == 0)
        let translation = ImageTranslator(walker: try walker(over: bytes, like: image)).translate(0)
        #expect(translation == .fault(.outsideImage, level: format.geometry.rootLevel - 1))
    }

    @Test("A table entry looping back to the root is reported once and the walk ends", arguments: allFormatKinds)
    func loopToRoot(kind: TableFormatKind) throws {
        let (image, _, _, _) = try sample(kind)
        let format = try image.configuration.makeFormat()
        var bytes = image.bytes
        poke(&bytes, base: image.configuration.base, at: image.root, format.geometry.tableEntry(child: HostPhysicalAddress(image.root)))
        let finding = try #require(try onlyFinding(bytes, like: image))
        #expect(finding.problem == .tableAlreadyReached(image.root))
    }

    @Test("Stage 2: a block descriptor at level 3 is a reserved descriptor type")
    func stageTwoReservedDescriptorType() throws {
        let (image, _, page, _) = try sample(.stageTwo4K)
        var bytes = image.bytes
        poke(&bytes, base: image.configuration.base, at: page, peek(bytes, base: image.configuration.base, at: page) & ~StageTwoDescriptorBits.tableOrPage)
        let finding = try #require(try onlyFinding(bytes, like: image))
        #expect(finding.problem == .reservedDescriptorType && finding.level == 0)
        #expect(ImageTranslator(walker: try walker(over: bytes, like: image)).translate(0) == .fault(.notPresent, level: 0))
    }

    @Test("Stage 2: RES0 bits and addresses beyond the PA size are reported")
    func stageTwoReservedBitsAndAddressSize() throws {
        let (image, _, page, block) = try sample(.stageTwo4K)
        let base = image.configuration.base
        var bytes = image.bytes
        poke(&bytes, base: base, at: block, peek(bytes, base: base, at: block) | 1 << 12)   // below the 2M block size
        #expect(try onlyFinding(bytes, like: image)?.problem == .reservedBits(1 << 12))
        bytes = image.bytes
        poke(&bytes, base: base, at: page, peek(bytes, base: base, at: page) | 1 << 47)    // PA is 48 bits: fine
        #expect(try walker(over: bytes, like: image).contents().findings.isEmpty)
        let narrow = ImageConfiguration(kind: .stageTwo4K, inputAddressBits: 40, outputAddressBits: 40)
        let narrowWalker = try ImageWalker(format: narrow.makeFormat(), image: TableImage(bytes: bytes, base: base), root: image.root)
        let finding = try #require(narrowWalker.contents().findings.first)
        #expect(finding.problem == .addressBeyondOutputSize(0x8000_8000_0000, bits: 40))
        #expect(ImageTranslator(walker: narrowWalker).translate(0) == .fault(.addressSize, level: 0))
    }

    @Test("A root outside a truncated image is an error, not a crash")
    func truncatedImage() throws {
        let (image, _, _, _) = try sample(.ept4)
        let format = try image.configuration.makeFormat()
        #expect(throws: ImageError.self) {
            _ = try ImageWalker(format: format, image: TableImage(bytes: Array(image.bytes.prefix(100)), base: image.configuration.base), root: image.root)
        }
        #expect(throws: ImageError.self) {
            _ = try ImageWalker(format: format, image: TableImage(bytes: image.bytes, base: image.configuration.base), root: image.root + 8)
        }
    }

    @Test("A leaf mapping the table image itself is a warning", arguments: [TableFormatKind.ept4, .stageTwo4K])
    func outputInsideImageWarns(kind: TableFormatKind) throws {
        let base = ImageConfiguration(kind: kind).base
        let (image, walker) = try buildImage("0x0 4K \(NumberSyntax.hex(base)) rw wb", ImageConfiguration(kind: kind))
        #expect(image.warnings.count == 1)
        let findings = walker.contents().findings
        #expect(findings.map(\.problem) == [.outputInsideImage(base)])
        #expect(ImageDumper(walker: walker).render().malformedCount == 0)
    }

    @Test("Random bytes never crash the dump, the translator or the SVG renderer", arguments: allFormatKinds)
    func randomBytes(kind: TableFormatKind) throws {
        let configuration = ImageConfiguration(kind: kind)
        let format = try configuration.makeFormat()
        let pageSize = format.geometry.tablePageSize
        var generator = SplitMix(seed: UInt64(kind.rawValue.utf8.count) &* 0x9E37_79B9)
        for round in 0..<4 {
            let pages = format.geometry.rootTableCount + 3
            var bytes = (0..<(pages * pageSize)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            // Point some entries at pages of the image so the walk goes deep.
            for slot in 0..<64 {
                let page = configuration.base + UInt64(Int(generator.next() % UInt64(pages)) * pageSize)
                let entry = format.geometry.tableEntry(child: HostPhysicalAddress(page)) | (round.isMultiple(of: 2) ? 0 : generator.next() & 0xFFF0_0000_0000_0F00)
                poke(&bytes, base: configuration.base, at: configuration.base + UInt64(slot * 8 * 7 % (pages * pageSize - 8)) & ~7, entry)
            }
            let walker = try ImageWalker(format: format, image: TableImage(bytes: bytes, base: configuration.base), root: configuration.base)
            let contents = walker.contents()
            #expect(contents.tablePages.count <= pages)
            _ = ImageDumper(walker: walker).render()
            _ = ImageSVGRenderer(walker: walker).render()
            let translator = ImageTranslator(walker: walker)
            for _ in 0..<256 { _ = translator.translate(generator.next() % format.geometry.inputAddressSpaceSize, access: .write) }
        }
    }
}

/// A small deterministic generator for the fuzz test.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
