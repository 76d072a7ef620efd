import SLATCore

/// One cached entry with what the detectors track about it.
@usableFromInline
struct TLBSlot {
    var translation: CachedTranslation
    /// Fill order, to tell a live entry from an older one at the same key.
    var serial: UInt64
    /// An invalidation that covered the entry's address but left it while
    /// the tables no longer granted it.
    var suspectedBy: TLBInvalidation? = nil
    /// The first address used through the entry after it became suspect.
    var firstSuspectUse: GuestPhysicalAddress? = nil
    /// Already reported stale; its next use is a stale use.
    var condemned = false
    /// That stale use has been reported.
    var useReported = false

    /// Whether a detector tracks this entry (suspect or condemned).
    var isFlagged: Bool { suspectedBy != nil || condemned }
}

/// The contents of one vCPU TLB: one dictionary per level keyed by the
/// entry's first guest address, plus the indexes the detectors need (how
/// many smaller entries lie under each larger-size slot, which table pages
/// cached walks went through) and a FIFO for capacity eviction.
///
/// Not thread-safe: ``SimulatedTLB`` keeps it in a mutex.
@usableFromInline
struct TLBStorage {
    /// Bytes an entry at each level (height) maps.
    let sizes: [UInt64]
    /// Entries kept before the oldest is evicted.
    let capacity: Int
    var levels: [[UInt64: TLBSlot]]
    /// `cover[L][key]`: entries at levels below L inside the L-sized slot at key.
    var cover: [[UInt64: Int]]
    /// Cached entries whose walk went through each table page.
    var pathReferences: [UInt64: Int] = [:]
    var order: [(level: Int, key: UInt64, serial: UInt64)] = []
    var orderHead = 0
    var count = 0
    var nextSerial: UInt64 = 0
    @usableFromInline var statistics = TLBStatistics()
    /// Entries that are suspect or condemned: while zero, a hit needs no
    /// second lookup for the stale-use detector.
    @usableFromInline var flaggedCount = 0

    /// The translation cached at `(level, key)` (which must exist).
    @usableFromInline
    func translation(level: Int, key: UInt64) -> CachedTranslation { levels[level][key]!.translation }

    /// The entry covering `address` and its translation, smallest level first.
    @usableFromInline
    func hit(_ address: UInt64) -> (level: Int, key: UInt64, translation: CachedTranslation)? {
        var level = 0
        while level < sizes.count {
            if !levels[level].isEmpty {
                let key = address & ~(sizes[level] &- 1)
                if let slot = levels[level][key] { return (level, key, slot.translation) }
            }
            level &+= 1
        }
        return nil
    }

    /// Marks the entry suspect: `invalidation` covered it and left it.
    mutating func markSuspect(level: Int, key: UInt64, by invalidation: TLBInvalidation) {
        guard let slot = levels[level][key], slot.suspectedBy == nil else { return }
        if !slot.isFlagged { flaggedCount &+= 1 }
        levels[level][key]!.suspectedBy = invalidation
    }

    /// Clears the entry's suspicion (the tables grant it again).
    mutating func clearSuspicion(level: Int, key: UInt64) {
        guard let slot = levels[level][key], slot.suspectedBy != nil else { return }
        levels[level][key]!.suspectedBy = nil
        levels[level][key]!.firstSuspectUse = nil
        if !levels[level][key]!.isFlagged { flaggedCount &-= 1 }
    }

    /// Condemns the entry: reported stale, its next use is a stale use.
    mutating func condemn(level: Int, key: UInt64) {
        guard let slot = levels[level][key], !slot.condemned else { return }
        if !slot.isFlagged { flaggedCount &+= 1 }
        levels[level][key]!.condemned = true
    }

    init(sizes: [UInt64], capacity: Int) {
        self.sizes = sizes
        self.capacity = max(1, capacity)
        self.levels = sizes.map { _ in [:] }
        self.cover = sizes.map { _ in [:] }
    }

    var levelCount: Int { sizes.count }

    @inline(__always)
    func key(_ address: UInt64, level: Int) -> UInt64 { address & ~(sizes[level] &- 1) }

    /// The entry covering `address`, smallest level first.
    @usableFromInline
    func find(_ address: UInt64) -> (level: Int, key: UInt64)? {
        var level = 0
        while level < sizes.count {
            if !levels[level].isEmpty {
                let key = address & ~(sizes[level] &- 1)
                if levels[level][key] != nil { return (level, key) }
            }
            level &+= 1
        }
        return nil
    }

    mutating func insert(_ translation: CachedTranslation) {
        let level = translation.level
        let key = translation.guestAddress.rawValue
        if levels[level][key] != nil { _ = remove(level: level, key: key) }
        while count >= capacity { evictOldest() }
        levels[level][key] = TLBSlot(translation: translation, serial: nextSerial)
        order.append((level, key, nextSerial))
        nextSerial &+= 1
        count &+= 1
        var upper = level &+ 1
        while upper < sizes.count {
            cover[upper][self.key(key, level: upper), default: 0] &+= 1
            upper &+= 1
        }
        for index in 0..<translation.path.count {
            pathReferences[translation.path[index].rawValue, default: 0] &+= 1
        }
        if order.count > 4 * capacity + 64 { compactOrder() }
    }

    @usableFromInline @discardableResult
    mutating func remove(level: Int, key: UInt64) -> TLBSlot? {
        guard let slot = levels[level].removeValue(forKey: key) else { return nil }
        count &-= 1
        if slot.isFlagged { flaggedCount &-= 1 }
        var upper = level &+ 1
        while upper < sizes.count {
            let coverKey = self.key(key, level: upper)
            if let value = cover[upper][coverKey] {
                if value <= 1 { cover[upper].removeValue(forKey: coverKey) } else { cover[upper][coverKey] = value &- 1 }
            }
            upper &+= 1
        }
        let path = slot.translation.path
        for index in 0..<path.count {
            let page = path[index].rawValue
            if let value = pathReferences[page] {
                if value <= 1 { pathReferences.removeValue(forKey: page) } else { pathReferences[page] = value &- 1 }
            }
        }
        return slot
    }

    mutating func removeAll() -> Int {
        let removed = count
        for level in 0..<sizes.count {
            levels[level].removeAll(keepingCapacity: true)
            cover[level].removeAll(keepingCapacity: true)
        }
        pathReferences.removeAll(keepingCapacity: true)
        order.removeAll(keepingCapacity: true)
        orderHead = 0
        count = 0
        flaggedCount = 0
        return removed
    }

    mutating func evictOldest() {
        while orderHead < order.count {
            let record = order[orderHead]
            orderHead &+= 1
            if let slot = levels[record.level][record.key], slot.serial == record.serial {
                remove(level: record.level, key: record.key)
                statistics.evictions &+= 1
                return
            }
        }
        // Every record was stale: rebuild the order from the live entries.
        compactOrder()
        if let (level, key) = anyEntry() {
            remove(level: level, key: key)
            statistics.evictions &+= 1
        }
    }

    func anyEntry() -> (Int, UInt64)? {
        for level in 0..<sizes.count { if let key = levels[level].keys.first { return (level, key) } }
        return nil
    }

    mutating func compactOrder() {
        var live: [(level: Int, key: UInt64, serial: UInt64)] = []
        live.reserveCapacity(count)
        for index in orderHead..<order.count {
            let record = order[index]
            if let slot = levels[record.level][record.key], slot.serial == record.serial { live.append(record) }
        }
        order = live
        orderHead = 0
    }

    /// Keys of entries at `level` overlapping `[start, end)`.
    func keys(atLevel level: Int, overlapping start: UInt64, _ end: UInt64) -> [UInt64] {
        if levels[level].isEmpty || end <= start { return [] }
        let size = sizes[level]
        let first = key(start, level: level)
        let steps = (end &- 1 &- first) / size &+ 1
        if steps <= UInt64(levels[level].count) {
            var keys: [UInt64] = []
            var candidate = first
            for _ in 0..<steps {
                if levels[level][candidate] != nil { keys.append(candidate) }
                candidate &+= size
            }
            return keys
        }
        return levels[level].keys.filter { $0 < end && $0 &+ size > start }
    }

    /// Entries of another size that cover part of the slot `(level, key)`:
    /// larger ones covering it, smaller ones inside it.
    func conflicts(level: Int, key: UInt64) -> [(level: Int, key: UInt64)] {
        var found: [(level: Int, key: UInt64)] = []
        var upper = level &+ 1
        while upper < sizes.count {
            let upperKey = self.key(key, level: upper)
            if levels[upper][upperKey] != nil { found.append((upper, upperKey)) }
            upper &+= 1
        }
        if level > 0, let under = cover[level][key], under > 0 {
            let end = key &+ sizes[level]
            for lower in 0..<level {
                for lowerKey in keys(atLevel: lower, overlapping: key, end) { found.append((lower, lowerKey)) }
            }
        }
        return found
    }

    /// Every live entry in address order (smaller level first at one
    /// address), so reports and listings are deterministic.
    var allKeys: [(level: Int, key: UInt64)] {
        var result: [(level: Int, key: UInt64)] = []
        result.reserveCapacity(count)
        for level in 0..<sizes.count { for key in levels[level].keys { result.append((level, key)) } }
        result.sort { $0.key != $1.key ? $0.key < $1.key : $0.level < $1.level }
        return result
    }
}
