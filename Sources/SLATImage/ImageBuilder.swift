import SLATCore
import SLATx86
import SLATArm64

/// A table image built from mappings: the bytes of `tables.bin`, the root,
/// the register values and the leaves written.
public struct BuiltImage: Sendable {
    /// The configuration it was built for.
    public var configuration: ImageConfiguration
    /// The table pages, byte 0 at ``ImageConfiguration/base``, up to the highest page used.
    public var bytes: [UInt8]
    /// Physical address of the root table(s).
    public var root: UInt64
    /// The mappings as parsed.
    public var requests: [MappingRequest]
    /// Every leaf written, in guest address order.
    public var leaves: [LeafMapping]
    /// The raw entry of each leaf in ``leaves`` (same order).
    public var leafEntries: [UInt64]
    /// Lines that are accepted but probably wrong (mappings of the table
    /// image itself), with the file name left empty for the caller to fill.
    public var warnings: [ScriptDiagnostic]

    /// The root register values.
    public func registers() throws(ImageError) -> RegisterFile {
        try RegisterFile(configuration: configuration, root: root)
    }
}

/// Builds table images with SLATCore's `PageTable` over a `TableArena`
/// whose physical base is the image's base, so the bytes are exactly what
/// hardware would walk at that address.
///
/// Each build owns its tables and arena: it maps in exclusive mode with a
/// `CountingTLB` (no processor walks the tables while they are built), and
/// builds may run concurrently on different threads.
public enum ImageBuilder {
    /// Builds the tables for `requests` (already checked by ``MappingScriptParser``).
    ///
    /// Each mapping uses the largest leaves its alignment and `leaf=` allow.
    /// EPT write-without-read mappings are then rewritten literally (read
    /// cleared) and `ipat=1` leaves get bit 6.
    ///
    /// Everything that can be known before building is checked first (the
    /// base, and the leaves against ``ImageBuildLimits``), so a refused
    /// build does no work; the table pages are limited to those between the
    /// base and the PA size, so no table is written where an entry cannot
    /// point.
    ///
    /// - Parameters:
    ///   - fileName: the script's name in diagnostics.
    ///   - requests: the parsed mapping-script lines, in order.
    ///   - configuration: the format, its options and the image's base address.
    /// - Throws: ``ImageError/invalidConfiguration(_:)`` for a base that is
    ///   not aligned to the table page size or leaves no room for the root
    ///   tables below the PA size; ``ImageError/script(_:)`` naming the line
    ///   where the leaves or the table memory run out;
    ///   ``ImageError/buildFailed(_:)`` when the format rejects a mapping.
    public static func build(
        _ requests: [MappingRequest], configuration: ImageConfiguration, fileName: String = "mapping script"
    ) throws(ImageError) -> BuiltImage {
        switch try configuration.makeFormat() {
        case .ept(let format): return try build(requests, configuration: configuration, format: format, fileName: fileName)
        case .stageTwo(let format): return try build(requests, configuration: configuration, format: format, fileName: fileName)
        }
    }

    /// Table pages one build may use: those of ``ImageBuildLimits/tableBytes``
    /// that lie below the PA size (an entry cannot point above it).
    ///
    /// - Throws: ``ImageError/invalidConfiguration(_:)`` when the base is not
    ///   aligned or the root tables do not fit below the PA size.
    static func tablePageCount<Format: PageTableFormat>(configuration: ImageConfiguration, format: Format) throws(ImageError) -> Int {
        let base = configuration.base
        let pageSize = UInt64(format.tablePageSize)
        guard base & (pageSize - 1) == 0 else {
            throw .invalidConfiguration("--base \(NumberSyntax.hex(base)) is not aligned to the \(NumberSyntax.size(pageSize)) table page size")
        }
        let limit = format.outputAddressLimit
        let rootPages = UInt64(max(1, format.rootEntryCount * 8 / format.tablePageSize))
        guard base < limit, (limit - base) / pageSize >= rootPages else {
            throw .invalidConfiguration("--base \(NumberSyntax.hex(base)): the root table\(rootPages > 1 ? "s" : "") (\(NumberSyntax.size(rootPages * pageSize))) would reach past the \(format.outputAddressBits)-bit PA size")
        }
        return Int(min(UInt64(ImageBuildLimits.tableBytes) / pageSize, (limit - base) / pageSize))
    }

    static func build<Format: PageTableFormat>(
        _ requests: [MappingRequest], configuration: ImageConfiguration, format: Format, fileName: String
    ) throws(ImageError) -> BuiltImage {
        let pageCount = try tablePageCount(configuration: configuration, format: format)
        try ImageBuildLimits.checkLeafCount(of: requests, format: format, fileName: fileName)
        let arena: TableArena
        let table: PageTable<Format, TableArena>
        do {
            arena = try TableArena(
                pageSize: format.tablePageSize, pageCount: pageCount,
                physicalBase: HostPhysicalAddress(configuration.base), prefault: false)
            table = try PageTable(format: format, memory: arena, readerSlots: 1)
        } catch {
            throw .buildFailed("cannot create tables at base \(NumberSyntax.hex(configuration.base)): " + ImageError.describe(error))
        }
        let context = PageTableContext()
        let tlb = CountingTLB()
        for request in requests {
            var batch = TLBFlushBatch()
            do {
                try table.map(
                    request.range, to: request.output, attributes: request.encodableAttributes,
                    maximumLevel: request.maximumLevel, context: context, batch: &batch, tlb: tlb)
            } catch {
                table.settle(batch, tlb: tlb, mode: .exclusive)
                guard case .outOfTableMemory = error else {
                    throw .buildFailed("\(fileName):\(request.line): " + ImageError.describe(error))
                }
                let room = pageCount < ImageBuildLimits.tableBytes / format.tablePageSize
                    ? "the \(pageCount) table page\(pageCount == 1 ? "" : "s") that fit between --base \(NumberSyntax.hex(configuration.base)) and the \(format.outputAddressBits)-bit PA size"
                    : "the \(NumberSyntax.size(UInt64(ImageBuildLimits.tableBytes))) of table memory one image may use"
                throw .script([ScriptDiagnostic(file: fileName, line: request.line, message: "out of table memory: the mappings up to this line need more than \(room)")])
            }
            table.settle(batch, tlb: tlb, mode: .exclusive)
            if request.encodedWithoutRead || request.ignorePAT {
                rewriteLeaves(of: request, in: table)
            }
        }
        context.pageCache.release(to: arena)

        let usedBytes = arena.usedByteCount
        let bytes = [UInt8](UnsafeRawBufferPointer(start: arena.region, count: usedBytes))
        var leaves = requests.flatMap { table.leaves(in: $0.range) }
        leaves.sort { $0.guestAddress < $1.guestAddress }
        let entries = leaves.map { rawLeafEntry(at: $0.guestAddress, in: table) }

        let imageEnd = configuration.base + UInt64(usedBytes)
        let warnings = requests.compactMap { request -> ScriptDiagnostic? in
            let start = request.output.rawValue
            guard start < imageEnd, configuration.base < start + request.size else { return nil }
            return ScriptDiagnostic(file: "", line: request.line, message: "warning: output range [\(NumberSyntax.hex(start)), \(NumberSyntax.hex(start + request.size))) overlaps the table image [\(NumberSyntax.hex(configuration.base)), \(NumberSyntax.hex(imageEnd)))")
        }
        return BuiltImage(
            configuration: configuration, bytes: bytes, root: table.root.rawValue, requests: requests,
            leaves: leaves, leafEntries: entries, warnings: warnings)
    }

    /// The entry pointer of the present leaf that maps `address`, or `nil`.
    static func leafEntryPointer<Format: PageTableFormat>(
        at address: GuestPhysicalAddress, in table: PageTable<Format, TableArena>
    ) -> (pointer: EntryPointer, level: Int)? {
        let format = table.format
        var entries = table.memory.entries(at: table.root)
        var level = format.rootLevel
        while true {
            let pointer = entries + format.index(of: address, atLevel: level)
            let entry = pointer.pointee.load(ordering: .relaxed)
            guard format.isPresent(entry, atLevel: level) else { return nil }
            if level == 0 || !format.isTable(entry, atLevel: level) { return (pointer, level) }
            entries = table.memory.entries(at: format.childTable(of: entry))
            level -= 1
        }
    }

    static func rawLeafEntry<Format: PageTableFormat>(at address: GuestPhysicalAddress, in table: PageTable<Format, TableArena>) -> UInt64 {
        leafEntryPointer(at: address, in: table)?.pointer.pointee.load(ordering: .relaxed) ?? 0
    }

    /// Clears EPT read on literal write-without-read leaves and sets ignore-PAT.
    static func rewriteLeaves<Format: PageTableFormat>(of request: MappingRequest, in table: PageTable<Format, TableArena>) {
        var address = request.guest
        let end = request.guest + request.size
        while address < end {
            guard let (pointer, level) = leafEntryPointer(at: GuestPhysicalAddress(address), in: table) else { return }
            var entry = pointer.pointee.load(ordering: .relaxed)
            if request.encodedWithoutRead { entry &= ~ExtendedPageTableBits.read }
            if request.ignorePAT { entry |= ExtendedPageTableBits.ignorePAT }
            pointer.pointee.store(entry, ordering: .relaxed)
            address += table.format.entrySize(atLevel: level)
        }
    }
}
