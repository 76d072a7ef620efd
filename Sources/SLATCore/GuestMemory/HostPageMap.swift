import Synchronization

/// A model of the host's memory map (the `mm` of the VMM process): which host
/// frames back which host-virtual addresses, at which mapping size, writable
/// or not; and the mmu-notifier that tells secondary MMUs before a mapping is
/// taken away or reduced.
///
/// ## Changes and notifier events
/// ``map(_:to:size:count:writable:)`` adds mappings and raises no event
/// (adding a translation needs no invalidation). ``unmap(_:)``,
/// ``remap(_:to:size:)`` and ``protect(_:writable:)`` with `writable: false`
/// remove or reduce mappings, and each raises, through the listeners:
/// 1. a ``HostInvalidation`` with phase `start`, **before** the change is
///    visible to ``lookup(_:)``;
/// 2. the change, applied atomically under the internal lock;
/// 3. the matching `end`, after the change is visible.
/// The event range is the range asked for widened to whole huge mappings
/// where one has to be split (the host remaps the rest of a split huge page
/// with smaller pages, which changes their mapping size). A change that
/// touches no mapping raises nothing.
///
/// ## Locking contract
/// Changes are serialised by a change lock (the analogue of the `mmap_lock`
/// taken for writing) held from validation through `end`, so a change's
/// events never interleave with another change and a `start` listener sees
/// the mapping still unchanged, as KVM's `invalidate_range_start` does with
/// the mm locked. The mappings themselves sit behind a separate reader-writer
/// spin lock held only while they are read or replaced — never while a
/// listener runs — so lookups (page faults resolving a host page) proceed
/// during a `start` callback. Listeners run on the changing thread; they may
/// call ``lookup(_:)`` and register or remove listeners, but must not change
/// this map (that would deadlock on the change lock). Every method may be
/// called from any thread.
public final class HostPageMap: Sendable {
    /// Sorted by start address; ranges pairwise disjoint.
    private let mappingsState = ReaderWriterLocked<[HostMapping]>([])
    /// Serialises changes (map, unmap, remap, protect) with their events.
    private let changeLock = SpinLock()
    /// The next event id.
    private let eventIDs = Atomic<UInt64>(0)
    private let listeners = ListenerList<HostInvalidation>()

    /// An empty address space.
    public init() {}

    // MARK: Listeners

    /// Registers `listener` for every later notifier event. Returns the token
    /// for ``removeListener(_:)``. A listener registered while a change is in
    /// progress may see that change's `end` without its `start`.
    public func addListener(_ listener: @escaping @Sendable (HostInvalidation) -> Void) -> ListenerToken {
        listeners.add(listener)
    }

    /// Unregisters a listener; it may still receive an event that is being
    /// delivered. Returns whether it was registered.
    @discardableResult
    public func removeListener(_ token: ListenerToken) -> Bool {
        listeners.remove(token)
    }

    // MARK: Lookup

    /// What the host maps at `address`, or `nil` when nothing is mapped there
    /// (callers that need an error throw ``SLATError/hostAddressNotMapped(_:)``).
    /// Binary search under the shared lock.
    public func lookup(_ address: HostVirtualAddress) -> HostPage? {
        mappingsState.read { mappings in
            let index = Self.firstIndex(in: mappings, endingAfter: address)
            guard index < mappings.count, mappings[index].range.contains(address) else { return nil }
            return mappings[index].page(at: address)
        }
    }

    /// The run of mappings holding `address`, or `nil` when nothing is
    /// mapped there. Binary search under the shared lock: a fault's memo of
    /// its last host run (see the stage-2 fault handler) refills from it.
    public func run(containing address: HostVirtualAddress) -> HostMapping? {
        mappingsState.read { mappings in
            let index = Self.firstIndex(in: mappings, endingAfter: address)
            guard index < mappings.count, mappings[index].range.contains(address) else { return nil }
            return mappings[index]
        }
    }

    /// Every run of mappings, sorted by address.
    public var mappings: [HostMapping] { mappingsState.read { $0 } }

    // MARK: Changes

    /// Maps `count` mappings of `size` from `address` to consecutive host
    /// frames from `frame`. Raises no event.
    ///
    /// Throws ``SLATError/emptyRange`` when `count` is zero and
    /// ``SLATError/invalidHostMapping(_:)`` when `address` or `frame` is not
    /// aligned to `size`, the range wraps, or any of it is already mapped.
    public func map(
        _ address: HostVirtualAddress, to frame: HostFrameNumber, size: HostMappingSize = .size4K,
        count: UInt64 = 1, writable: Bool = true
    ) throws(SLATError) {
        guard count != 0 else { throw .emptyRange }
        guard address.isAligned(to: size.bytes), frame.address.isAligned(to: size.bytes),
              count <= UInt64.max >> size.shift,
              !address.rawValue.addingReportingOverflow(count << size.shift).overflow
        else { throw .invalidHostMapping(address) }
        let mapping = HostMapping(start: address, frame: frame, size: size, count: count, writable: writable)
        try changeLock.withLock { () throws(SLATError) in
            try mappingsState.write { (mappings: inout [HostMapping]) throws(SLATError) in
                let index = Self.firstIndex(in: mappings, endingAfter: address)
                if index < mappings.count, mappings[index].range.overlaps(mapping.range) {
                    throw .invalidHostMapping(address)
                }
                mappings.insert(mapping, at: index)
            }
        }
    }

    /// Unmaps every mapping in `range` (holes are fine), splitting huge
    /// mappings that straddle its ends. Raises `start`/`end` with kind
    /// `.unmap` if anything was mapped.
    ///
    /// Throws ``SLATError/emptyRange`` for an empty range and
    /// ``SLATError/invalidHostMapping(_:)`` when it is not 4 KiB-aligned.
    public func unmap(_ range: HostVirtualRange) throws(SLATError) {
        try Self.validate(range)
        changeLock.withLock {
            let current = mappingsState.read { $0 }
            guard let eventRange = Self.affectedRange(of: range, in: current) else { return }
            change(eventRange, kind: .unmap, to: Self.carve(current, range) { _, _, _ in [] })
        }
    }

    /// Moves every page of `range` to consecutive host frames from `frame`
    /// (migration), keeping each page's write permission, with mappings of
    /// up to `size` where address and frame alignment allow. Raises
    /// `start`/`end` with kind `.remap`.
    ///
    /// Throws ``SLATError/emptyRange`` for an empty range,
    /// ``SLATError/invalidHostMapping(_:)`` when it is not 4 KiB-aligned and
    /// ``SLATError/hostAddressNotMapped(_:)`` (the first hole) unless the
    /// whole range is mapped.
    public func remap(
        _ range: HostVirtualRange, to frame: HostFrameNumber, size: HostMappingSize = .size4K
    ) throws(SLATError) {
        try Self.validate(range)
        try changeLock.withLock { () throws(SLATError) in
            let current = mappingsState.read { $0 }
            try Self.requireMapped(range, in: current)
            let eventRange = Self.affectedRange(of: range, in: current) ?? range
            // The pages of the range as spans of equal permission.
            var spans: [(range: HostVirtualRange, writable: Bool)] = []
            for run in current {
                guard let inside = run.range.intersection(range) else { continue }
                if let last = spans.last, last.writable == run.writable, last.range.end == inside.start {
                    spans[spans.count - 1].range = HostVirtualRange(start: last.range.start, uncheckedEnd: inside.end)
                } else {
                    spans.append((inside, run.writable))
                }
            }
            var moved: [HostMapping] = []
            for span in spans {
                let offset = span.range.start.distance(from: range.start) >> frameShift
                moved += HostMapping.runs(
                    from: span.range.start, to: span.range.end,
                    frame: HostFrameNumber(frame.rawValue &+ offset), size: size, writable: span.writable)
            }
            var updated = Self.carve(current, range) { _, _, _ in [] }
            updated.insert(contentsOf: moved, at: Self.firstIndex(in: updated, endingAfter: range.start))
            change(eventRange, kind: .remap, to: updated)
        }
    }

    /// Gives every page of `range` the write permission `writable`, splitting
    /// huge mappings that straddle its ends. Taking write access away raises
    /// `start`/`end` with kind `.protect`; granting it raises nothing.
    ///
    /// Throws ``SLATError/emptyRange`` for an empty range,
    /// ``SLATError/invalidHostMapping(_:)`` when it is not 4 KiB-aligned and
    /// ``SLATError/hostAddressNotMapped(_:)`` (the first hole) unless the
    /// whole range is mapped.
    public func protect(_ range: HostVirtualRange, writable: Bool) throws(SLATError) {
        try Self.validate(range)
        try changeLock.withLock { () throws(SLATError) in
            let current = mappingsState.read { $0 }
            try Self.requireMapped(range, in: current)
            let updated = Self.carve(current, range) { span, spanFrame, run in
                HostMapping.runs(from: span.start, to: span.end, frame: spanFrame, size: run.size, writable: writable)
            }
            if writable {
                replaceMappings(with: updated)
            } else {
                let eventRange = Self.affectedRange(of: range, in: current) ?? range
                change(eventRange, kind: .protect, to: updated)
            }
        }
    }

    /// Raises `start`, installs `updated` (built from the current list
    /// before the call), raises `end`. Called with `changeLock` held.
    private func change(_ range: HostVirtualRange, kind: HostInvalidationKind, to updated: [HostMapping]) {
        let id = eventIDs.wrappingAdd(1, ordering: .relaxed).oldValue
        listeners.notify(HostInvalidation(id: id, phase: .start, range: range, kind: kind))
        replaceMappings(with: updated)
        listeners.notify(HostInvalidation(id: id, phase: .end, range: range, kind: kind))
    }

    /// Swaps `updated` in. The list is built before and the old one freed
    /// after the write lock, so lookups (a fault's or a pfn-cache refresh's
    /// resolve) wait only for the swap, never for a rebuild. Called with
    /// `changeLock` held, so the list `updated` was built from is current.
    private func replaceMappings(with updated: [HostMapping]) {
        var replaced = updated
        mappingsState.write { mappings in swap(&mappings, &replaced) }
        _ = replaced  // the old list is released here, outside the lock
    }

    // MARK: Helpers (pure functions of the mapping list)

    private static func validate(_ range: HostVirtualRange) throws(SLATError) {
        guard !range.isEmpty else { throw .emptyRange }
        guard range.start.isAligned(to: 1 << frameShift), range.size & ((1 << frameShift) - 1) == 0,
              !range.start.rawValue.addingReportingOverflow(range.size).overflow
        else { throw .invalidHostMapping(range.start) }
    }

    /// Index of the first run ending after `address`.
    private static func firstIndex(in mappings: [HostMapping], endingAfter address: HostVirtualAddress) -> Int {
        var low = 0
        var high = mappings.count
        while low < high {
            let middle = low + (high - low) / 2
            if mappings[middle].range.end <= address {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return low
    }

    /// Throws ``SLATError/hostAddressNotMapped(_:)`` at the first address of
    /// `range` that no run maps.
    private static func requireMapped(_ range: HostVirtualRange, in mappings: [HostMapping]) throws(SLATError) {
        var cursor = range.start
        var index = firstIndex(in: mappings, endingAfter: cursor)
        while cursor < range.end {
            guard index < mappings.count, mappings[index].range.contains(cursor) else {
                throw .hostAddressNotMapped(cursor)
            }
            cursor = mappings[index].range.end
            index += 1
        }
    }

    /// `range` widened to whole mappings at its ends, or `nil` when no run
    /// overlaps it.
    private static func affectedRange(of range: HostVirtualRange, in mappings: [HostMapping]) -> HostVirtualRange? {
        var start = range.start
        var end = range.end
        var touched = false
        var index = firstIndex(in: mappings, endingAfter: range.start)
        while index < mappings.count, mappings[index].start < range.end {
            let run = mappings[index]
            touched = true
            if run.range.contains(range.start) {
                start = range.start.alignedDown(to: run.size.bytes)
            }
            if run.range.contains(HostVirtualAddress(range.end.rawValue &- 1)) {
                end = range.end.alignedUp(to: run.size.bytes) ?? range.end
            }
            index += 1
        }
        return touched ? HostVirtualRange(start: start, uncheckedEnd: end) : nil
    }

    /// The mapping list with the part of every run inside `range` replaced
    /// by `transform(part, frame backing the part, run)`; the parts outside
    /// are kept, re-expressed with smaller mappings where a huge mapping is
    /// split.
    private static func carve(
        _ mappings: [HostMapping], _ range: HostVirtualRange,
        _ transform: (HostVirtualRange, HostFrameNumber, HostMapping) -> [HostMapping]
    ) -> [HostMapping] {
        var result: [HostMapping] = []
        result.reserveCapacity(mappings.count + 4)
        for run in mappings {
            guard let inside = run.range.intersection(range) else {
                result.append(run)
                continue
            }
            result += HostMapping.runs(
                from: run.start, to: inside.start, frame: run.frame,
                size: run.size, writable: run.writable)
            result += transform(inside, run.frame(of: inside.start), run)
            result += HostMapping.runs(
                from: inside.end, to: run.range.end, frame: run.frame(of: inside.end),
                size: run.size, writable: run.writable)
        }
        return result
    }
}
