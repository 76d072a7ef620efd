import SLATArm64
import SLATCore
import Testing

/// The start level, walk length and concatenation for every granule and IPA
/// size, worked out by hand with the rule "fewest levels, at least 2, with at
/// most 16 tables concatenated at the start level":
/// a table at Arm level L resolves `granule shift + bits × (4 − L)` address
/// bits, 4 more with 16 tables.
@Suite("Stage-2 granule × IPA matrix")
struct StageTwoGeometryMatrixTests {
    /// (IPA bits, start level, levels, root tables, root entries).
    typealias Row = (ipa: Int, start: Int, levels: Int, tables: Int, entries: Int)

    /// 4 KiB: level 2 covers ≤ 34 bits (30 + 4), level 1 ≤ 43 (39 + 4), level 0 ≤ 48.
    static let rows4KiB: [Row] = [
        (32, 2, 2, 4, 2048), (33, 2, 2, 8, 4096), (34, 2, 2, 16, 8192),
        (35, 1, 3, 1, 32), (36, 1, 3, 1, 64), (37, 1, 3, 1, 128), (38, 1, 3, 1, 256), (39, 1, 3, 1, 512),
        (40, 1, 3, 2, 1024), (41, 1, 3, 4, 2048), (42, 1, 3, 8, 4096), (43, 1, 3, 16, 8192),
        (44, 0, 4, 1, 32), (45, 0, 4, 1, 64), (46, 0, 4, 1, 128), (47, 0, 4, 1, 256), (48, 0, 4, 1, 512),
    ]

    /// 16 KiB: level 2 covers ≤ 40 bits (36 + 4), level 1 ≤ 48 (47 + 1: two tables).
    static let rows16KiB: [Row] = [
        (32, 2, 2, 1, 128), (33, 2, 2, 1, 256), (34, 2, 2, 1, 512), (35, 2, 2, 1, 1024), (36, 2, 2, 1, 2048),
        (37, 2, 2, 2, 4096), (38, 2, 2, 4, 8192), (39, 2, 2, 8, 16384), (40, 2, 2, 16, 32768),
        (41, 1, 3, 1, 32), (42, 1, 3, 1, 64), (43, 1, 3, 1, 128), (44, 1, 3, 1, 256), (45, 1, 3, 1, 512),
        (46, 1, 3, 1, 1024), (47, 1, 3, 1, 2048), (48, 1, 3, 2, 4096),
    ]

    /// 64 KiB: level 2 covers ≤ 46 bits (42 + 4), level 1 ≤ 52.
    static let rows64KiB: [Row] = [
        (32, 2, 2, 1, 8), (33, 2, 2, 1, 16), (34, 2, 2, 1, 32), (35, 2, 2, 1, 64), (36, 2, 2, 1, 128),
        (37, 2, 2, 1, 256), (38, 2, 2, 1, 512), (39, 2, 2, 1, 1024), (40, 2, 2, 1, 2048), (41, 2, 2, 1, 4096),
        (42, 2, 2, 1, 8192), (43, 2, 2, 2, 16384), (44, 2, 2, 4, 32768), (45, 2, 2, 8, 65536),
        (46, 2, 2, 16, 131_072),
        (47, 1, 3, 1, 32), (48, 1, 3, 1, 64), (49, 1, 3, 1, 128), (50, 1, 3, 1, 256), (51, 1, 3, 1, 512),
        (52, 1, 3, 1, 1024),
    ]

    static func check(_ granule: TranslationGranule, _ row: Row) throws {
        let format = try StageTwoFormat(
            granule: granule, inputAddressBits: row.ipa, outputAddressBits: row.ipa > 48 ? 52 : 48)
        #expect(format.startLevel == row.start, "start level of \(granule) / \(row.ipa)")
        #expect(format.architecturalLevel(format.rootLevel) == row.start)
        #expect(format.levelCount == row.levels, "levels of \(granule) / \(row.ipa)")
        #expect(format.rootTableCount == row.tables, "root tables of \(granule) / \(row.ipa)")
        #expect(format.rootEntryCount == row.entries, "root entries of \(granule) / \(row.ipa)")
    }

    @Test func every4KiBIPASizeFrom32To48() throws {
        #expect(Self.rows4KiB.map(\.ipa) == Array(32...48))
        for row in Self.rows4KiB { try Self.check(.size4KiB, row) }
    }

    @Test func every16KiBIPASizeFrom32To48() throws {
        #expect(Self.rows16KiB.map(\.ipa) == Array(32...48))
        for row in Self.rows16KiB { try Self.check(.size16KiB, row) }
    }

    @Test func every64KiBIPASizeFrom32To52() throws {
        #expect(Self.rows64KiB.map(\.ipa) == Array(32...52))
        for row in Self.rows64KiB { try Self.check(.size64KiB, row) }
    }

    @Test func fourKiB40BitIPAStartsAtLevel1WithTwoConcatenatedTables() throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40, outputAddressBits: 40)
        #expect(format.startLevel == 1)
        #expect(format.rootTableCount == 2)
        #expect(format.rootEntryCount == 1024)
    }

    @Test func sixteenKiB40BitIPAStartsAtLevel2WithSixteenConcatenatedTables() throws {
        let format = try StageTwoFormat(granule: .size16KiB, inputAddressBits: 40, outputAddressBits: 40)
        #expect(format.startLevel == 2)
        #expect(format.rootTableCount == 16)
        #expect(format.rootEntryCount == 32768)
    }

    @Test func sixteenKiBNeverStartsAtLevel0() throws {
        for ipa in 32...48 {
            #expect(try StageTwoFormat(granule: .size16KiB, inputAddressBits: ipa).startLevel >= 1)
        }
    }

    @Test func rootTablesTimesEntriesPerTableCoverTheRootEntries() throws {
        for (granule, rows) in [(TranslationGranule.size4KiB, Self.rows4KiB), (.size16KiB, Self.rows16KiB),
                                (.size64KiB, Self.rows64KiB)] {
            for row in rows {
                let format = try StageTwoFormat(
                    granule: granule, inputAddressBits: row.ipa, outputAddressBits: row.ipa > 48 ? 52 : 48)
                #expect(format.rootEntryCount <= format.rootTableCount * format.entriesPerTable)
                #expect(format.rootTableCount == 1 || format.rootEntryCount == format.rootTableCount * format.entriesPerTable)
                #expect(format.rootTableCount <= 16)
            }
        }
    }
}
