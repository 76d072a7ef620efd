import Testing
import SLATCore
import SLATx86
import SLATArm64
import SLATImage

@Suite("Build, dump and translate round trips")
struct ImageRoundTripTests {
    @Test("Dump ranges reproduce every scripted mapping", arguments: allFormatKinds)
    func dumpReproducesScript(kind: TableFormatKind) throws {
        let (image, walker) = try buildImage(portableScript(ept: kind.isEPT), ImageConfiguration(kind: kind))
        let contents = walker.contents()
        #expect(contents.findings.isEmpty)
        // Merge runs that differ only in leaf size: a mapping may mix leaf sizes at its ends.
        var merged: [(guest: UInt64, size: UInt64, output: UInt64, attributes: LeafAttributes)] = []
        for range in ImageDumper.ranges(of: contents.leaves) {
            if let last = merged.last, last.guest + last.size == range.guest, last.output + last.size == range.output,
               last.attributes == range.attributes {
                merged[merged.count - 1].size += range.size
            } else {
                merged.append((range.guest, range.size, range.output, range.attributes))
            }
        }
        #expect(merged.count == image.requests.count)
        for (range, request) in zip(merged, image.requests.sorted { $0.guest < $1.guest }) {
            #expect(range.guest == request.guest)
            #expect(range.size == request.size)
            #expect(range.output == request.output.rawValue)
            #expect(range.attributes.permissions == request.permissions)
            #expect(range.attributes.memoryType == request.memoryType)
            #expect(range.attributes.accessed == request.accessed)
        }
    }

    @Test("Translating the first and last byte of each mapping gives its output and attributes", arguments: allFormatKinds)
    func translateMatchesScript(kind: TableFormatKind) throws {
        let (image, walker) = try buildImage(portableScript(ept: kind.isEPT), ImageConfiguration(kind: kind))
        let translator = ImageTranslator(walker: walker)
        for request in image.requests {
            for offset in [0, request.size - 1] {
                guard case .mapped(let output, let leaf) = translator.translate(request.guest + offset) else {
                    Issue.record("line \(request.line) + \(offset) did not translate")
                    continue
                }
                #expect(output == request.output.rawValue + offset)
                #expect(leaf.attributes.permissions == request.permissions)
                #expect(leaf.attributes.memoryType == request.memoryType)
            }
        }
    }

    @Test("An unmapped address faults not-present at the level where the walk stops", arguments: allFormatKinds)
    func unmappedAddressFaults(kind: TableFormatKind) throws {
        let (_, walker) = try buildImage(portableScript(ept: kind.isEPT), ImageConfiguration(kind: kind))
        let translator = ImageTranslator(walker: walker)
        let geometry = walker.format.geometry
        // Next to the 128K mapping: same last-level table, so the walk stops at height 0.
        #expect(translator.translate(0x220000) == .fault(.notPresent, level: 0))
        // Far away: the root entry is empty (for one-table roots) or a high-level table is.
        if case .fault(.notPresent, let level) = translator.translate(geometry.inputAddressSpaceSize - geometry.pageSize) {
            #expect(level > 0)
        } else {
            Issue.record("top of the address space translated")
        }
        #expect(translator.translate(geometry.inputAddressSpaceSize) == .fault(.outsideAddressSpace, level: geometry.rootLevel))
    }

    @Test("The register files describe the root the builder used and read back the same", arguments: allFormatKinds)
    func registersRoundTrip(kind: TableFormatKind) throws {
        let (image, _) = try buildImage(portableScript(ept: kind.isEPT), ImageConfiguration(kind: kind))
        let registers = try image.registers()
        let parsed = try RegisterFile(parsing: registers.environmentText)
        #expect(parsed == registers)
        #expect(parsed.configuration == image.configuration)
        #expect(parsed.root == image.root)
        switch try image.configuration.makeFormat() {
        case .ept(let format):
            let eptp = ExtendedPageTablePointer(rawValue: try #require(parsed["EPTP"]))
            #expect(eptp.rootAddress.rawValue == image.root)
            #expect(eptp.levelCount == format.levelCount)
            #expect(eptp.accessedDirtyEnabled == format.accessedDirtyEnabled)
        case .stageTwo(let format):
            let vttbr = StageTwoTranslationTableBase(rawValue: try #require(parsed["VTTBR"]))
            #expect(vttbr.rootAddress(in: format).rawValue == image.root)
            let vtcr = StageTwoTranslationControl(rawValue: try #require(parsed["VTCR"]))
            #expect(vtcr.inputAddressBits == format.inputAddressBits)
            #expect(vtcr.startLevel == format.startLevel)
            #expect(parsed["ROOT_TABLES"] == UInt64(format.rootTableCount))
        }
    }

    @Test("The image starts at the base and its size is a whole number of table pages", arguments: allFormatKinds)
    func imageLayout(kind: TableFormatKind) throws {
        let configuration = ImageConfiguration(kind: kind, base: 0x1_0000_0000)
        let (image, walker) = try buildImage(portableScript(ept: kind.isEPT), configuration)
        let pageSize = walker.format.geometry.tablePageSize
        #expect(image.bytes.count % pageSize == 0)
        #expect(image.root >= 0x1_0000_0000 && image.root < 0x1_0000_0000 + UInt64(image.bytes.count))
        // Every table page reached lies in the image and every image page is reached
        // or free (zero): nothing else was written.
        let contents = walker.contents()
        for page in stride(from: 0, to: image.bytes.count, by: pageSize) {
            let address = configuration.base + UInt64(page)
            if !contents.tablePages.contains(address) {
                #expect(image.bytes[page..<(page + pageSize)].allSatisfy { $0 == 0 })
            }
        }
    }

    @Test("leaf= limits the leaf size and the dump shows the leaves")
    func leafOptionLimitsLeafSize() throws {
        let (_, walker) = try buildImage("0x0 4M 0x80000000 rw wb leaf=4K\n0x40000000 1G 0xC0000000 rw wb leaf=2M", ImageConfiguration(kind: .ept4))
        let ranges = ImageDumper.ranges(of: walker.contents().leaves)
        #expect(ranges.map(\.leafSize) == [4096, 2 << 20])
        #expect(ranges.map(\.leafCount) == [1024, 512])
    }

    @Test("EPT write-without-read is written literally and translates to a misconfiguration")
    func eptWriteWithoutReadIsLiteral() throws {
        let (image, walker) = try buildImage("0x0 4K 0x1000 w wb\n0x1000 4K 0x2000 rw wb", ImageConfiguration(kind: .ept4))
        let entry = try #require(image.leafEntries.first)
        #expect(entry & 0b111 == ExtendedPageTableBits.write)
        let translator = ImageTranslator(walker: walker)
        #expect(translator.translate(0x0) == .fault(.misconfiguration, level: 0))
        #expect(translator.translate(0x1000).isMapped)
        #expect(walker.contents().findings.map(\.problem) == [.writeWithoutRead])
    }

    @Test("ipat=1 sets EPT bit 6 in each leaf of the mapping only")
    func ignorePATSetsBitSix() throws {
        let (image, _) = try buildImage("0x0 8K 0x1000 rw uc ipat=1\n0x2000 4K 0x3000 rw uc", ImageConfiguration(kind: .ept4))
        #expect(image.leafEntries.map { $0 & ExtendedPageTableBits.ignorePAT != 0 } == [true, true, false])
    }

    @Test("dirty=1 on EPT with A/D sets bit 9 and the translation says dirty")
    func dirtyFlagRoundTrips() throws {
        let (_, walker) = try buildImage("0x0 4K 0x1000 rw wb dirty=1", ImageConfiguration(kind: .ept4AccessedDirty))
        let line = ImageTranslator(walker: walker).line(for: 0x10)
        #expect(line == "0x10 -> 0x1010 level=1 size=4K perms=rw- type=wb accessed dirty")
    }

    @Test("Split execute rights round-trip with --mbec and --xnx", arguments: [
        ImageConfiguration(kind: .ept4, modeBasedExecute: true), ImageConfiguration(kind: .stageTwo4K, executeNeverSplit: true),
    ])
    func splitExecuteRoundTrips(configuration: ImageConfiguration) throws {
        let (_, walker) = try buildImage("0x0 4K 0x1000 rs wb\n0x1000 4K 0x2000 ru wb\n0x2000 4K 0x3000 rx wb", configuration)
        let translator = ImageTranslator(walker: walker)
        #expect(translator.translate(0x0, access: .executePrivileged).isMapped)
        #expect(translator.translate(0x0, access: .executeUser) == .fault(.permission, level: 0))
        #expect(translator.translate(0x1000, access: .executeUser).isMapped)
        #expect(translator.translate(0x1000, access: .execute) == .fault(.permission, level: 0))
        #expect(translator.translate(0x2000, access: .executeUser).isMapped)
        #expect(ImageDumper.ranges(of: walker.contents().leaves).map(\.attributes.permissions.description) == ["r-s", "r-u", "r-x"])
    }

    @Test("--access reports permission faults and the stage-2 access flag fault", arguments: [TableFormatKind.ept4, .stageTwo4K])
    func accessChecks(kind: TableFormatKind) throws {
        let (_, walker) = try buildImage("0x0 4K 0x1000 r wb\n0x1000 4K 0x2000 rw wb accessed=0", ImageConfiguration(kind: kind))
        let translator = ImageTranslator(walker: walker)
        #expect(translator.translate(0x0, access: .read).isMapped)
        #expect(translator.translate(0x0, access: .write) == .fault(.permission, level: 0))
        #expect(translator.translate(0x0, access: .execute) == .fault(.permission, level: 0))
        // EPT has no access-flag fault; stage 2 faults on AF = 0.
        #expect(translator.translate(0x1000, access: .write) == (kind.isEPT ? translator.translate(0x1000) : .fault(.accessFlag, level: 0)))
    }

    @Test("Stage 2 reports the access flag fault before a permission fault, as the Arm ARM orders them")
    func accessFlagBeforePermission() throws {
        let (_, walker) = try buildImage("0x0 4K 0x1000 r wb accessed=0", ImageConfiguration(kind: .stageTwo4K))
        #expect(ImageTranslator(walker: walker).translate(0x0, access: .write) == .fault(.accessFlag, level: 0))
    }

    @Test("Translation lines follow the contract's format", arguments: [TableFormatKind.ept4, .stageTwo4K])
    func translationLines(kind: TableFormatKind) throws {
        let (_, walker) = try buildImage("0x200000 2M 0x80000000 rwx wb", ImageConfiguration(kind: kind))
        let translator = ImageTranslator(walker: walker)
        #expect(translator.line(for: 0x201234) == "0x201234 -> 0x80001234 level=2 size=2M perms=rwx type=wb accessed")
        #expect(translator.line(for: 0x1000) == "0x1000 fault=not-present level=2")
    }
}

extension ImageTranslation {
    var isMapped: Bool {
        if case .mapped = self { return true }
        return false
    }
}
