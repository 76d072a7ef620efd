// The MMU-operation fuzz target's body: bytes → a sequence of public-API
// calls on a whole second-level MMU — `ExtendedPageTableMMU` (EPT, with or
// without accessed/dirty flags) or `StageTwoMMU`, picked by the first byte —
// checked after every call against a reference model:
//   - every leaf maps the host page its guest frame is backed by now (its
//     memslot present, the host page map's current frame), never writable
//     where the memslot is read-only or the host page is not, and nothing
//     is mapped outside a present memslot;
//   - a guest access (SLATSim's hardware walker through simulated TLBs,
//     faults to `handleFault`) completes on that host page, or ends with
//     the exit the model predicts (no memslot, read-only memslot, read-only
//     host page);
//   - a zap leaves no leaf in its frames;
//   - dirty-log completeness: every write completed while a memslot logs
//     appears in the next harvest or read of its log, until a clear covers it;
//   - a caller error (bad address, address space, reader slot, memslot,
//     clear range; a dirty-log call of the wrong kind) is a typed error of
//     the kind the model predicts, and the tables are unchanged;
//   - after teardown every MMU call throws `SLATError.tornDown`;
//   - open notifier windows: a host remap, protection change or unmap is
//     split into separate calls (start; the host change; end), and the
//     calls between them run while the invalidation is open. No vCPU
//     reaches a host page after the notifier `start` for it returned: no
//     leaf maps a frame of an open range, and a fault on such a frame
//     retries or exits; at the end every `start` has had its `end` and no
//     invalidation is in progress;
//   - the simulated TLBs' detectors (stale entries at every call's return,
//     tables freed while cached).
// Every input is valid: each 4-byte chunk decodes to one call. Run by the
// libFuzzer entry (Tests/Fuzz/MMUOperationFuzzer.swift) and, for every
// committed corpus input, by FuzzCorpusTests.
import SLATArm64
import SLATCore
import SLATSim
import SLATx86

/// The MMU-operation target.
public enum MMUOperationTarget {
    /// The calls of one input, at most.
    static let operationLimit = 64

    /// Decodes `bytes` and runs the calls on a fresh MMU; returns what went
    /// wrong, with the calls made so far, or `nil`.
    public static func run(_ bytes: UnsafeRawBufferPointer) -> String? {
        trace(bytes).problem
    }

    /// Runs `bytes` as ``run(_:)`` does; returns what went wrong (or `nil`)
    /// and the calls as made: each call, the notifier phases of a window,
    /// how an access that did not complete ended.
    public static func trace(_ bytes: UnsafeRawBufferPointer) -> (problem: String?, calls: [String]) {
        guard bytes.count >= 5 else { return (nil, []) }
        let selector = bytes[0]
        var operations: [MMUOperation] = []
        var offset = 1
        while offset + 4 <= bytes.count && operations.count < operationLimit {
            operations.append(MMUOperation(bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]))
            offset += 4
        }
        do {
            switch selector % 3 {
            case 0: return outcome(try MMUFuzzRun(x86AccessedDirty: true), operations)
            case 1: return outcome(try MMUFuzzRun(x86AccessedDirty: false), operations)
            default: return outcome(try MMUFuzzRun(stageTwo: ()), operations)
            }
        } catch {
            return ("MMU operation fuzzer: building the VM threw \(error)", [])
        }
    }

    static func outcome<MMU>(_ run: MMUFuzzRun<MMU>, _ operations: [MMUOperation]) -> (problem: String?, calls: [String]) {
        let problem = run.run(operations)
        return (problem, run.done)
    }
}

/// One call, from 4 bytes: `code` (low 4 bits: the call; bits 4–5: the
/// memslot; bits 6–7: a variant), a 16-bit operand, an extra byte. Call 3
/// is the notifier window: variants 0–2 open one (the notifier `start` of a
/// host remap, write-protection or unmap of the memslot's pages), variant 3
/// ends its current phase (first the host change, then the `end`).
struct MMUOperation: CustomStringConvertible {
    var call: Int
    var slot: Int
    var variant: Int
    var operand: UInt64
    var extra: UInt8

    init(_ code: UInt8, _ low: UInt8, _ high: UInt8, _ extra: UInt8) {
        call = Int(code & 0xF)
        slot = Int((code >> 4) & 0x3) % 3
        variant = Int(code >> 6)
        operand = UInt64(low) | UInt64(high) << 8
        self.extra = extra
    }

    static let names = ["read", "write", "execute", "notifier window", "zap", "host remap", "host protect", "memslot remove/add",
                        "memslot read-only toggle", "dirty log enable", "dirty log get-and-clear", "dirty log get",
                        "dirty log clear", "dirty log disable", "aging", "caller error / pre-fault / teardown"]

    var description: String {
        if call == 3 {
            if variant == 3 { return "notifier window: next phase" }
            let kind = ["remap", "write-protect", "unmap"][variant]
            return "notifier start of a host \(kind), slot \(slot + 1) operand \(operand) extra \(extra)"
        }
        return "\(Self.names[call]) slot \(slot + 1) variant \(variant) operand \(operand) extra \(extra)"
    }
}

/// The fixed guest layout, the same for both backends: three memslots,
/// backed by 2 MiB, 1 GiB and 4 KiB host pages (so faults may map 2 MiB,
/// 1 GiB and 4 KiB leaves).
struct SlotLayout {
    var id: UInt32
    var baseFrame: UInt64
    var pages: UInt64
    var hostAddress: UInt64
    var hostFrame: UInt64
    var hostSize: HostMappingSize
    /// Where the host remaps this memslot's pages to.
    var remapFrame: UInt64

    static let all = [
        SlotLayout(id: 1, baseFrame: 0x4000_0000 >> 12, pages: 1024, hostAddress: 0x7F00_0000_0000,
                   hostFrame: 0x10_0000_0000 >> 12, hostSize: .size2M, remapFrame: 0x40_0000_0000 >> 12),
        SlotLayout(id: 2, baseFrame: 0x8000_0000 >> 12, pages: 1 << 18, hostAddress: 0x7F00_4000_0000,
                   hostFrame: 0x20_0000_0000 >> 12, hostSize: .size1G, remapFrame: 0x50_0000_0000 >> 12),
        SlotLayout(id: 3, baseFrame: 0x1_0000_0000 >> 12, pages: 16, hostAddress: 0x7F00_8000_0000,
                   hostFrame: 0x30_0000_0000 >> 12, hostSize: .size4K, remapFrame: 0x60_0000_0000 >> 12),
    ]

    var memslot: Memslot {
        Memslot(id: id, baseFrame: GuestFrameNumber(baseFrame), pageCount: pages, hostAddress: HostVirtualAddress(hostAddress))
    }
    var frames: GuestFrameRange { GuestFrameRange(start: GuestFrameNumber(baseFrame), count: pages) }

    /// A page of the memslot from a 16-bit operand, spread over the whole
    /// slot (the 1 GiB one: over its 2 MiB regions).
    func page(_ operand: UInt64) -> UInt64 { pages <= 0x1_0000 ? operand % pages : (operand &* 521) % pages }
}

/// One leaf as a failed call must leave it.
struct TableLeaf: Equatable, CustomStringConvertible {
    var address: UInt64
    var size: UInt64
    var output: UInt64
    var permissions: Permissions
    init(_ leaf: LeafMapping) {
        address = leaf.guestAddress.rawValue
        size = leaf.size
        output = leaf.output.rawValue
        permissions = leaf.attributes.permissions
    }
    var description: String {
        "0x\(String(address, radix: 16))+\(size >> 10)K → 0x\(String(output, radix: 16)) \(permissions)"
    }
}

/// The reference model's view of one memslot's dirty log.
struct LogModel {
    var manual: Bool
    /// Pages (slot-relative) written since their log last reported and
    /// cleared them: the next read must report each.
    var owed: Set<UInt64> = []
}

/// The fuzzer's hooks into the notifiers of one run's host page map and
/// guest memory, set once the run exists and cleared when it goes.
// @unchecked Sendable: the listeners that call these closures run on the
// thread that makes the host or memslot change, and every change of a fuzz
// run is made by the fuzzing thread, which also sets and clears the
// closures; no other thread ever touches them.
final class NotifierHooks: @unchecked Sendable {
    /// Registered on the host page map before guest memory's listener: sees
    /// each `end` with the host change made and the invalidation not yet
    /// ended (the tracker still counts it in progress).
    var beforeTracker: ((HostInvalidation) -> Void)?
    /// Registered after guest memory's listener: sees each `start` after
    /// the tracker began the invalidation and the MMU zapped the range.
    var afterTracker: ((HostInvalidation) -> Void)?
    /// Registered on guest memory after the MMU: each guest `start` after
    /// the MMU's listener returned, each `end`.
    var guest: ((GuestInvalidation) -> Void)?

    func clear() {
        beforeTracker = nil
        afterTracker = nil
        guest = nil
    }
}

/// A host change split into calls: opened by its notifier `start`, it runs
/// the calls up to the next "next phase" call with the host unchanged, then
/// those up to the following one with the host changed and the `end` not
/// yet delivered.
struct NotifierWindow {
    enum Phase { case opening, beforeChange, afterChange }
    var range: HostVirtualRange
    var phase: Phase
}

/// A guest invalidation whose `start` the MMU's listener has returned from
/// and whose `end` has not been delivered.
struct OpenInvalidation: CustomStringConvertible {
    var id: UInt64
    var range: GuestFrameRange
    var memslot: UInt32
    var description: String {
        "frames 0x\(String(range.start.rawValue, radix: 16))+\(range.count) of memslot \(memslot)"
    }
}

/// One run of an input on one MMU, with the model beside it. Not
/// `Sendable`: a run lives on the fuzzing thread only.
final class MMUFuzzRun<MMU: SecondStageMMU> {
    typealias Format = MMU.Format
    typealias Table = PageTable<Format, SimulatedTableMemory<TableArena>>

    let name: String
    let mmu: MMU
    let arena: TableArena
    let log: SimulationLog
    let tlb: SimulatedContextTLB
    let guestMemory: GuestMemory
    /// The tables the vCPU walks (`nil` once torn down).
    let currentTable: () -> Table?
    /// Enables the log of a memslot with the backend's own choices (the
    /// last argument picks x86's mode: default, write-protect, dirty bit).
    let enableLog: (UInt32, DirtyLogProtection, Int) throws(SLATError) -> Void
    /// The vCPU's context and the host's (aging).
    let vcpu = PageTableContext(readerSlot: 0)
    let host = PageTableContext(readerSlot: 1)
    var walker: HardwareWalker<Format, TableArena>

    // The model.
    var present: [Bool] = [true, true, true]
    var readOnly: [Bool] = [false, false, false]
    /// The memslots that log (a removed memslot's log goes with it).
    var logs: [UInt32: LogModel] = [:]
    var tornDown = false
    /// The host range whose young state was just cleared, with no call since.
    var justClearedYoung: HostVirtualRange?
    var done: [String] = []
    /// The leaves the check after the last call walked, until the next
    /// call's first snapshot takes them (nothing changed the tables since).
    var checkedLeaves: [TableLeaf]?
    /// The words each memslot's last successful log read returned.
    var lastReported: [UInt32: [UInt64]] = [:]

    // The calls and the notifier windows.
    var operations: [MMUOperation] = []
    /// The next call to run.
    var cursor = 0
    /// What went wrong, once something did (set by calls and by listeners).
    var problem: String?
    /// The host change whose notifier window is open (one at a time: the
    /// host page map serialises its changes from `start` to `end`).
    var window: NotifierWindow?
    /// Calls made inside a window that wait for its `end`, in order: host
    /// changes (serialised with the open one), memslot and dirty-log flag
    /// changes (a memslot update waits for in-flight invalidations, as in
    /// KVM), pre-faults that would retry on the in-flight range.
    var deferred: [MMUOperation] = []
    /// Guest invalidations started and not ended, as the MMU's listener saw them.
    var openInvalidations: [OpenInvalidation] = []
    let hooks: NotifierHooks
    var guestToken: ListenerToken?

    init(name: String, mmu: MMU, arena: TableArena, log: SimulationLog, tlb: SimulatedContextTLB, guestMemory: GuestMemory,
         hooks: NotifierHooks, walker: HardwareWalker<Format, TableArena>, table: @escaping () -> Table?,
         enable: @escaping (UInt32, DirtyLogProtection, Int) throws(SLATError) -> Void) {
        self.name = name
        self.mmu = mmu
        self.arena = arena
        self.log = log
        self.tlb = tlb
        self.guestMemory = guestMemory
        self.walker = walker
        currentTable = table
        enableLog = enable
        self.hooks = hooks
        hooks.afterTracker = { [weak self] event in self?.hostStarted(event) }
        hooks.beforeTracker = { [weak self] event in self?.hostChanged(event) }
        hooks.guest = { [weak self] event in self?.guestEvent(event) }
        // After the MMU's own listener (registered when it was built).
        guestToken = guestMemory.addListener { [hooks] event in hooks.guest?(event) }
    }

    deinit {
        hooks.clear()
        if let guestToken { guestMemory.removeListener(guestToken) }
        mmu.teardown()
    }

    /// Guest memory over a host page map the fuzzer listens to on both
    /// sides of guest memory's own listener (see ``NotifierHooks``).
    static func makeGuestMemory() throws -> (GuestMemory, NotifierHooks) {
        let hooks = NotifierHooks()
        let hostPages = HostPageMap()
        _ = hostPages.addListener { [hooks] event in hooks.beforeTracker?(event) }
        let guestMemory = GuestMemory(hostPages: hostPages)
        _ = hostPages.addListener { [hooks] event in hooks.afterTracker?(event) }
        for slot in SlotLayout.all {
            try guestMemory.hostPages.map(HostVirtualAddress(slot.hostAddress), to: HostFrameNumber(slot.hostFrame),
                                          size: slot.hostSize, count: (slot.pages << 12) >> slot.hostSize.shift)
            try guestMemory.addMemslot(slot.memslot)
        }
        return (guestMemory, hooks)
    }

    // MARK: Running

    func run(_ operations: [MMUOperation]) -> String? {
        self.operations = operations
        cursor = 0
        runCalls()
        // Every window has closed: every `start` must have had its `end`.
        if problem == nil { problem = unclosedInvalidations() }
        guard let problem else { return nil }
        return (["MMU operation fuzzer (\(name)): \(problem)", "calls:"] + done.map { "  \($0)" })
            .joined(separator: "\n")
    }

    /// Records `found` unless a problem was recorded first.
    func report(_ found: String?) {
        if problem == nil { problem = found }
    }

    /// Runs calls from `cursor` on, checking the model after each, until the
    /// input ends, a problem is found or, inside a window, a "next phase"
    /// call ends the window's phase.
    func runCalls() {
        while problem == nil && cursor < operations.count {
            let operation = operations[cursor]
            cursor += 1
            if operation.call == 3 {
                if operation.variant == 3 {
                    guard window != nil else {
                        done.append("\(operation) (no window open: nothing)")
                        continue
                    }
                    done.append(operation.description)
                    return
                }
                if window != nil {
                    done.append("\(operation) (waits for the open window's end)")
                    deferred.append(operation)
                    continue
                }
                done.append(operation.description)
                openWindow(operation)
                continue
            }
            if window != nil && waitsForOpenWindow(operation) {
                done.append("\(operation) (waits for the open window's end)")
                deferred.append(operation)
                continue
            }
            done.append(operation.description)
            let found = apply(operation) ?? checkAll()
            report(found)
        }
    }

    /// Whether `operation` cannot run while a host invalidation is open.
    func waitsForOpenWindow(_ operation: MMUOperation) -> Bool {
        switch operation.call {
        // Host changes serialise on the host page map; memslot changes and
        // dirty-log enable/disable (a memslot flag change) wait for
        // in-flight invalidations.
        case 5, 6, 7, 8, 9, 13: return true
        case 15:
            if operation.variant == 0 || (operation.variant == 3 && operation.operand % 4 == 0) { return false }
            // A pre-fault retries each fault until it maps: one whose block
            // may overlap the in-flight range waits for the end.
            guard let inFlight = guestMemory.invalidations.inFlightRange else { return false }
            let slot = layout(operation.slot)
            return inFlight.overlaps(Self.gigabyteRegion(slot.baseFrame + slot.page(operation.operand)))
        default: return false
        }
    }

    /// The 1 GiB-aligned frames around `frame`: no fault on it maps a
    /// larger block.
    static func gigabyteRegion(_ frame: UInt64) -> GuestFrameRange {
        GuestFrameRange(start: GuestFrameNumber(frame & ~UInt64(0x3FFFF)), count: 0x40000)
    }

    // MARK: Notifier windows

    /// Opens a window: the host change of call `operation`, whose listeners
    /// run the calls of the window (``hostStarted(_:)``,
    /// ``hostChanged(_:)``); then the calls that waited for its end.
    func openWindow(_ operation: MMUOperation) {
        checkedLeaves = nil
        justClearedYoung = nil
        let slot = layout(operation.slot)
        // Extra bit 1 picks 4 KiB or 2 MiB (as the variant does for the
        // other host calls); bit 0 the frames a remap or a re-map goes to.
        var sized = operation
        sized.variant = Int(operation.extra >> 1) & 1
        let (range, page) = hostRange(slot, sized)
        let target = operation.extra & 1 == 0 ? slot.remapFrame : slot.hostFrame
        let size: HostMappingSize = range.size == 0x1000 ? .size4K : .size2M
        window = NotifierWindow(range: range, phase: .opening)
        let hostPages = guestMemory.hostPages
        do {
            switch operation.variant {
            case 0: try hostPages.remap(range, to: HostFrameNumber(target + page), size: size)
            case 1: try hostPages.protect(range, writable: false)
            default: try hostPages.unmap(range)
            }
        } catch {
            window = nil
            report("host change of \(range) threw \(error)")
            return
        }
        let opened = window?.phase != .opening
        window = nil
        checkedLeaves = nil
        done.append("  notifier end delivered: the host change of \(range) is complete")
        if operation.variant == 2 {
            // The host faults the pages in again (new mappings raise no event).
            do {
                try hostPages.map(range.start, to: HostFrameNumber(target + page), size: size)
            } catch {
                report("host map of \(range) after its unmap threw \(error)")
                return
            }
        }
        if !opened { report("host change of \(range) raised no notifier start") }
        report(unclosedInvalidations())
        report(checkAll())
        let waiting = deferred
        deferred = []
        for operation in waiting where problem == nil {
            done.append("\(operation) (after the window's end)")
            if operation.call == 3 {
                openWindow(operation)
            } else {
                report(apply(operation) ?? checkAll())
            }
        }
    }

    /// The host map's `start`, after the tracker began the invalidation and
    /// the MMU zapped the range: the window's calls with the host unchanged.
    func hostStarted(_ event: HostInvalidation) {
        guard event.phase == .start, window?.phase == .opening else { return }
        window?.phase = .beforeChange
        done.append("  notifier start of \(event.range) returned; open: \(openInvalidations)")
        report(checkAll())
        runCalls()
    }

    /// The host map's `end`, before the tracker ends the invalidation: the
    /// window's calls with the host changed.
    func hostChanged(_ event: HostInvalidation) {
        guard event.phase == .end, window?.phase == .beforeChange else { return }
        window?.phase = .afterChange
        checkedLeaves = nil
        done.append("  host change of \(event.range) made; notifier end not yet delivered")
        report(checkAll())
        runCalls()
    }

    /// Guest memory's events, after the MMU's listener.
    func guestEvent(_ event: GuestInvalidation) {
        switch event.phase {
        case .start:
            openInvalidations.append(OpenInvalidation(id: event.id, range: event.range, memslot: event.memslot))
        case .end:
            if let index = openInvalidations.firstIndex(where: {
                $0.id == event.id && $0.range == event.range && $0.memslot == event.memslot
            }) {
                openInvalidations.remove(at: index)
            } else {
                report("notifier end of frames \(event.range) of memslot \(event.memslot) without its start")
            }
        }
    }

    /// What is still open when nothing should be.
    func unclosedInvalidations() -> String? {
        if !openInvalidations.isEmpty { return "notifier start without its end: \(openInvalidations)" }
        let count = guestMemory.invalidations.inProgressCount
        return count == 0 ? nil : "\(count) invalidations still in progress after every notifier end"
    }

    /// The open invalidation holding `frame`, if any.
    func openInvalidation(containing frame: UInt64) -> OpenInvalidation? {
        openInvalidations.first { $0.range.contains(GuestFrameNumber(frame)) }
    }

    /// Why a fault on `frame` may retry rather than map: an open
    /// invalidation holds it, or the in-flight range overlaps a block the
    /// fault may map.
    func mayRetry(_ frame: UInt64) -> String? {
        if let open = openInvalidation(containing: frame) { return "inside the open invalidation of \(open)" }
        if let inFlight = guestMemory.invalidations.inFlightRange, inFlight.overlaps(Self.gigabyteRegion(frame)) {
            return "its block may overlap the in-flight frames"
        }
        return nil
    }

    /// The leaves of the whole guest layout (what a failed call must leave
    /// exactly as they were; none once torn down).
    func snapshot() -> [TableLeaf] {
        // The leaves the last check walked, when nothing ran since.
        if let fresh = checkedLeaves {
            checkedLeaves = nil
            return fresh
        }
        guard let table = currentTable() else { return [] }
        return table.leaves(in: Self.window).map(TableLeaf.init)
    }

    /// The guest range every leaf is looked for in.
    static var window: GuestPhysicalRange { GuestPhysicalRange(start: GuestPhysicalAddress(0), size: 0x2_0000_0000) }

    /// How `after` differs from `before`, or `nil`.
    func difference(_ before: [TableLeaf], _ after: [TableLeaf]) -> String? {
        if before == after { return nil }
        let gone = before.filter { !after.contains($0) }
        let new = after.filter { !before.contains($0) }
        return "leaves gone \(gone.prefix(4)), new \(new.prefix(4))"
    }

    /// A call that threw `error`: the kind must be `expected` (when the
    /// model predicts one) and the tables unchanged.
    func thrown(_ error: SLATError, before: [TableLeaf], expected: ((SLATError) -> Bool)?, _ what: String) -> String? {
        if tornDown {
            if case .tornDown = error { return nil }
            if expected?(error) == true { return nil }
            return "\(what) threw \(error) after teardown, not tornDown"
        }
        if let expected, !expected(error) { return "\(what) threw \(error), not the error the model predicts" }
        if case .outOfTableMemory = error { return nil }
        if let change = difference(before, snapshot()) { return "\(what) threw \(error) but changed the tables: \(change)" }
        return nil
    }

    /// A call that returned although the model predicts an error.
    func returned(expected: ((SLATError) -> Bool)?, _ what: String) -> String? {
        if tornDown { return "\(what) returned after teardown" }
        if expected != nil { return "\(what) returned, the model predicts an error" }
        return nil
    }

    /// Runs `call` with the tables snapshot around it: on a throw, the
    /// error must be typed as `expected` says and the tables unchanged; a
    /// return when the model expects an error fails. `onSuccess` checks
    /// and updates the model.
    func call<R>(_ what: String, expected: ((SLATError) -> Bool)? = nil, _ body: () throws(SLATError) -> R,
                 onSuccess: (R) -> String? = { _ in nil }) -> String? {
        let before = snapshot()
        do {
            let result = try body()
            if let problem = returned(expected: expected, what) { return problem }
            return onSuccess(result)
        } catch {
            return thrown(error, before: before, expected: expected, what)
        }
    }

    func layout(_ index: Int) -> SlotLayout { SlotLayout.all[index] }

    /// The page an access touches: variants 0 and 1 one of the memslot's
    /// first 8 pages (so pages are written, reported, cleared and written
    /// again), the others anywhere in it.
    func accessedPage(_ slot: SlotLayout, _ operation: MMUOperation) -> UInt64 {
        operation.variant < 2 ? operation.operand % 8 : slot.page(operation.operand)
    }

    func apply(_ operation: MMUOperation) -> String? {
        defer { checkedLeaves = nil }
        let slot = layout(operation.slot)
        let clearedYoung = justClearedYoung
        justClearedYoung = nil
        switch operation.call {
        case 0: return access(slot: operation.slot, page: accessedPage(slot, operation), .read)
        case 1: return access(slot: operation.slot, page: accessedPage(slot, operation), .write)
        // Notifier windows are opened and stepped by `runCalls`.
        case 3: return nil
        case 2: return access(slot: operation.slot, page: accessedPage(slot, operation), .executePrivileged)
        case 4: return zap(slot, operation)
        case 5: return remap(slot, operation)
        case 6: return protectHost(slot, operation)
        case 7: return toggleMemslot(operation.slot, readOnly: operation.variant & 1 == 1)
        case 8: return toggleReadOnly(operation.slot)
        case 9: return enable(slot, operation)
        case 10: return getAndClear(slot)
        case 11: return getLog(slot)
        case 12: return clearLog(slot, operation)
        case 13: return disableLog(slot)
        case 14: return aging(slot, operation, clearedYoung: clearedYoung)
        default: return special(slot, operation)
        }
    }

    // MARK: Expected backing

    /// The memslot (index) containing guest frame `frame`, present in the model.
    func slotIndex(containing frame: UInt64) -> Int? {
        for index in 0..<slotBounds.count where present[index] {
            let (start, end) = slotBounds[index]
            if frame >= start && frame < end { return index }
        }
        return nil
    }

    /// Each memslot's first frame and the frame after its last.
    let slotBounds: [(UInt64, UInt64)] = SlotLayout.all.map { ($0.baseFrame, $0.baseFrame + $0.pages) }

    func hostAddress(_ slot: SlotLayout, page: UInt64) -> HostVirtualAddress {
        HostVirtualAddress(slot.hostAddress + (page << 12))
    }

    // MARK: Calls

    func access(slot index: Int, page: UInt64, _ kind: AccessKind) -> String? {
        let slot = layout(index)
        let address = GuestPhysicalAddress((slot.baseFrame + page) << 12)
        let what = "\(kind) of \(address)"
        if tornDown {
            // The vCPUs are stopped: only the MMU's answer to a fault is checked.
            return call("fault at \(address) after teardown", { () throws(SLATError) in
                try mmu.handleFault(SecondStageFault(address: address, access: .read), vcpu: vcpu)
            })
        }
        let hva = hostAddress(slot, page: page)
        for _ in 0..<16 {
            do {
                if try mmu.isRootReloadRequested(vcpu) { _ = try mmu.loadRoot(vcpu) }
            } catch {
                return "root reload threw \(error)"
            }
            if let table = currentTable(), table.root != walker.root {
                walker = HardwareWalker(format: mmu.format, memory: arena, root: table.root)
            }
            switch walker.access(address, kind, through: tlb.vcpu(0)) {
            case .translated(let output, _):
                if let open = openInvalidation(containing: slot.baseFrame + page) {
                    return "\(what) reached \(output) after the notifier start of \(open) returned"
                }
                guard present[index] else { return "\(what) translated to \(output) with no memslot" }
                guard let backing = guestMemory.hostPages.lookup(hva) else { return "\(what): host page gone" }
                if output != backing.frame.address { return "\(what) reached \(output), backed by \(backing.frame.address)" }
                if kind == .write {
                    if readOnly[index] { return "\(what) completed in a read-only memslot" }
                    if !backing.writable { return "\(what) completed on a read-only host page" }
                    // A write made while the memslot logs: owed to its next read.
                    logs[slot.id]?.owed.insert(page)
                }
                return nil
            case .violation(let violation):
                let access: SecondStageAccess = switch kind {
                case .read: .read
                case .write: .write
                case .executePrivileged, .executeUser: .execute
                }
                let fault = SecondStageFault(address: address, access: access,
                                             isPermissionFault: violation.kind == .permission)
                let expected = expectedExit(slot: index, kind, hva: hva)
                let before = snapshot()
                do {
                    let outcome = try mmu.handleFault(fault, vcpu: vcpu)
                    if outcome.isRetry, let reason = mayRetry(slot.baseFrame + page) {
                        // The vCPU re-enters the guest and faults again
                        // until the invalidation ends.
                        done[done.count - 1] += " (retries: \(reason))"
                        return nil
                    }
                    if expected != nil {
                        // The fault may have relaxed nothing (a leaf another
                        // path left): the next attempt faults again and must
                        // then throw; only a translation is wrong.
                        continue
                    }
                } catch {
                    if let expected {
                        if !expected(error) { return "\(what): the fault threw \(error), not the exit the model predicts" }
                        if let change = difference(before, snapshot()) {
                            return "\(what): the fault threw \(error) but changed the tables: \(change)"
                        }
                        return nil
                    }
                    return "\(what): the fault threw \(error), the model predicts a mapping"
                }
            }
        }
        return "\(what) never completed (16 attempts)"
    }

    /// The exit an access must end with, or `nil` when it must translate.
    func expectedExit(slot index: Int, _ kind: AccessKind, hva: HostVirtualAddress) -> ((SLATError) -> Bool)? {
        guard present[index] else { return { if case .noMemslot = $0 { true } else { false } } }
        // Between an unmap and its notifier end (the host faults the page in
        // again after the end).
        if kind != .write && guestMemory.hostPages.lookup(hva) == nil {
            return { if case .hostAddressNotMapped = $0 { true } else { false } }
        }
        guard kind == .write else { return nil }
        if readOnly[index] { return { if case .readOnlyMemslot = $0 { true } else { false } } }
        if guestMemory.hostPages.lookup(hva) == nil { return { if case .hostAddressNotMapped = $0 { true } else { false } } }
        if guestMemory.hostPages.lookup(hva)?.writable == false {
            return { if case .hostPageReadOnly = $0 { true } else { false } }
        }
        return nil
    }

    func zap(_ slot: SlotLayout, _ operation: MMUOperation) -> String? {
        let counts: [UInt64] = [1, 16, 512, 1 << 18]
        let start = slot.baseFrame + slot.page(operation.operand)
        let frames = GuestFrameRange(start: GuestFrameNumber(start), count: counts[operation.variant])
        return call("zap \(frames)", { () throws(SLATError) -> Int in try mmu.zap(frames, addressSpace: nil) }) { _ in
            guard let table = currentTable() else { return nil }
            let left = table.leaves(in: frames.physicalRange)
            return left.isEmpty ? nil : "zap \(frames) left \(left.count) leaves, the first at \(left[0].guestAddress)"
        }
    }

    /// A 4 KiB or 2 MiB host range of the memslot, from the operand.
    func hostRange(_ slot: SlotLayout, _ operation: MMUOperation) -> (HostVirtualRange, UInt64) {
        let size: UInt64 = operation.variant & 1 == 0 || slot.pages < 512 ? 0x1000 : 0x20_0000
        let page = slot.page(operation.operand) & ~((size >> 12) - 1)
        return (HostVirtualRange(start: hostAddress(slot, page: page), size: size), page)
    }

    /// The host moves pages of the memslot to other host frames (the MMU's
    /// notifier zaps them between its start and end).
    func remap(_ slot: SlotLayout, _ operation: MMUOperation) -> String? {
        let (range, page) = hostRange(slot, operation)
        // Alternate between the remap area and the original frames.
        let target = operation.extra & 1 == 0 ? slot.remapFrame : slot.hostFrame
        let size: HostMappingSize = range.size == 0x1000 ? .size4K : .size2M
        do {
            try guestMemory.hostPages.remap(range, to: HostFrameNumber(target + page), size: size)
        } catch {
            return "host remap of \(range) threw \(error)"
        }
        return nil
    }

    func protectHost(_ slot: SlotLayout, _ operation: MMUOperation) -> String? {
        let (range, _) = hostRange(slot, operation)
        do {
            try guestMemory.hostPages.protect(range, writable: operation.extra & 1 == 1)
        } catch {
            return "host protect of \(range) threw \(error)"
        }
        return nil
    }

    func toggleMemslot(_ index: Int, readOnly makeReadOnly: Bool) -> String? {
        let slot = layout(index)
        do {
            if present[index] {
                _ = try guestMemory.removeMemslot(id: slot.id)
                present[index] = false
                logs[slot.id] = nil
            } else {
                var memslot = slot.memslot
                if makeReadOnly { memslot.flags.insert(.readOnly) }
                try guestMemory.addMemslot(memslot)
                present[index] = true
                readOnly[index] = makeReadOnly
            }
        } catch {
            return "memslot \(slot.id) remove/add threw \(error)"
        }
        return nil
    }

    func toggleReadOnly(_ index: Int) -> String? {
        let slot = layout(index)
        do {
            if readOnly[index] {
                try guestMemory.updateMemslotFlags(id: slot.id, removing: .readOnly)
            } else {
                try guestMemory.updateMemslotFlags(id: slot.id, inserting: .readOnly)
            }
            if !present[index] { return "read-only toggle of removed memslot \(slot.id) returned" }
            readOnly[index].toggle()
        } catch {
            if present[index] { return "read-only toggle of memslot \(slot.id) threw \(error)" }
            guard case .unknownMemslot = error else { return "read-only toggle of removed memslot threw \(error)" }
        }
        return nil
    }

    // MARK: Dirty logs

    /// The error a dirty-log call on `slot` must throw from the log's
    /// state (`nil`: none): `manual` says which kind of log the call needs
    /// (`nil`: any).
    func logStateError(_ slot: SlotLayout, manual: Bool?) -> ((SLATError) -> Bool)? {
        guard let log = logs[slot.id] else { return { if case .dirtyLoggingNotEnabled = $0 { true } else { false } } }
        guard let manual, manual != log.manual else { return nil }
        if manual { return { if case .dirtyLogNotClearedManually = $0 { true } else { false } } }
        return { if case .dirtyLogClearedManually = $0 { true } else { false } }
    }

    func enable(_ slot: SlotLayout, _ operation: MMUOperation) -> String? {
        let protection: DirtyLogProtection = switch operation.variant {
        case 0: .onHarvest
        case 1: .manual(initiallySet: false)
        case 2: .manual(initiallySet: true)
        default: .onHarvest
        }
        let index = SlotLayout.all.firstIndex { $0.id == slot.id }!
        let expected: ((SLATError) -> Bool)? = present[index] ? nil : { if case .unknownMemslot = $0 { true } else { false } }
        let what = "enable the log of memslot \(slot.id) (\(protection))"
        let modeChoice = Int(operation.extra & 3)
        return call(what, expected: expected, { () throws(SLATError) in try enableLog(slot.id, protection, modeChoice) }) { _ in
            if logs[slot.id] == nil {
                if case .manual = protection { logs[slot.id] = LogModel(manual: true) } else { logs[slot.id] = LogModel(manual: false) }
            }
            return nil
        }
    }

    func reported(_ words: [UInt64], _ slot: SlotLayout) -> Set<UInt64> {
        var pages: Set<UInt64> = []
        for (index, word) in words.enumerated() where word != 0 {
            for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 { pages.insert(UInt64(index * 64 + bit)) }
        }
        return pages
    }

    func missing(_ words: [UInt64], _ slot: SlotLayout, _ what: String) -> String? {
        guard let owed = logs[slot.id]?.owed, !owed.isEmpty else { return nil }
        let lost = owed.subtracting(reported(words, slot))
        return lost.isEmpty ? nil : "\(what) lost writes to pages \(lost.sorted().prefix(8)) of memslot \(slot.id)"
    }

    func getAndClear(_ slot: SlotLayout) -> String? {
        call("get-and-clear the log of memslot \(slot.id)", expected: logStateError(slot, manual: false),
                { () throws(SLATError) -> [UInt64] in try mmu.getAndClearDirtyLog(memslot: slot.id) }) { words in
            lastReported[slot.id] = words
            if let problem = missing(words, slot, "get-and-clear") { return problem }
            logs[slot.id]?.owed = []
            return nil
        }
    }

    func getLog(_ slot: SlotLayout) -> String? {
        call("get the log of memslot \(slot.id)", expected: logStateError(slot, manual: true),
                { () throws(SLATError) -> [UInt64] in try mmu.getDirtyLog(memslot: slot.id) }) { words in
            lastReported[slot.id] = words
            return missing(words, slot, "get")
        }
    }

    func clearLog(_ slot: SlotLayout, _ operation: MMUOperation) -> String? {
        let firstPage: UInt64 = switch operation.variant {
        case 0: 0
        case 1: 64 * (operation.operand % 4)
        case 2: operation.operand % 64 == 0 ? 1 : operation.operand % 64      // not a multiple of 64: out of range
        default: 64 * UInt64(operation.extra)
        }
        let word = operation.operand &* 0x9E37_79B9_7F4A_7C15
        // Variant 0 clears what the last read reported, as a VMM does.
        let bitmap = operation.variant == 0 ? lastReported[slot.id] ?? [word]
            : operation.extra & 2 == 0 ? [word] : [word, ~word]
        // Bits past the slot's end or an unaligned first page are refused
        // (a word's unset bits past the end are fine).
        var lastSet: UInt64?
        for (index, word) in bitmap.enumerated() where word != 0 {
            lastSet = UInt64(index * 64 + 63 - word.leadingZeroBitCount)
        }
        let outOfRange = firstPage % 64 != 0 || (lastSet.map { firstPage + $0 >= slot.pages } ?? false)
        let what = "clear the log of memslot \(slot.id) at page \(firstPage)"
        let body = { [mmu] () throws(SLATError) in try mmu.clearDirtyLog(memslot: slot.id, firstPage: firstPage, bitmap: bitmap) }
        // A log in the wrong state is judged before the range.
        if let wrongState = logStateError(slot, manual: true) { return call(what, expected: wrongState, body) }
        let expected: ((SLATError) -> Bool)? = outOfRange ? { if case .dirtyLogClearOutOfRange = $0 { true } else { false } } : nil
        return call(what, expected: expected, body) { _ in
            for page in reported(bitmap, slot) { logs[slot.id]?.owed.remove(firstPage + page) }
            return nil
        }
    }

    func disableLog(_ slot: SlotLayout) -> String? {
        let what = "disable the log of memslot \(slot.id)"
        let before = snapshot()
        do {
            try mmu.disableDirtyLogging(memslot: slot.id)
            if tornDown { return "\(what) returned after teardown" }
        } catch {
            // Refused (a memslot that does not log, or is gone): the
            // tables and the log state stay as they were.
            if let problem = thrown(error, before: before, expected: nil, what) { return problem }
            if logs[slot.id] != nil && !tornDown { return "\(what) threw \(error) for a logging memslot" }
            return nil
        }
        logs[slot.id] = nil
        return nil
    }

    // MARK: Aging

    func aging(_ slot: SlotLayout, _ operation: MMUOperation, clearedYoung: HostVirtualRange?) -> String? {
        let (range, _) = hostRange(slot, operation)
        if operation.extra & 1 == 0 {
            return call("clear young \(range)", { () throws(SLATError) -> Bool in try mmu.clearYoung(range, context: host) }) { _ in
                justClearedYoung = range
                return nil
            }
        }
        return call("test young \(range)", { () throws(SLATError) -> Bool in try mmu.testYoung(range, context: host) }) { young in
            if young, clearedYoung == range { return "test young \(range) right after clearing it says young" }
            return nil
        }
    }

    // MARK: Caller errors, pre-fault, teardown

    func special(_ slot: SlotLayout, _ operation: MMUOperation) -> String? {
        switch operation.variant {
        case 0:
            return callerError(slot, Int(operation.operand % 5))
        case 3 where operation.operand % 4 == 0:
            mmu.teardown()
            tornDown = true
            if !mmu.isTornDown { return "teardown returned but the MMU is not torn down" }
            return nil
        default:
            let start = GuestPhysicalAddress((slot.baseFrame + (slot.page(operation.operand) & ~511)) << 12)
            let range = GuestPhysicalRange(start: start, size: min(slot.pages << 12, 0x20_0000))
            let index = SlotLayout.all.firstIndex { $0.id == slot.id }!
            let expected: ((SLATError) -> Bool)? = present[index] ? nil : { if case .noMemslot = $0 { true } else { false } }
            return call("pre-fault \(range)", expected: expected, { () throws(SLATError) -> Int in
                try mmu.preFault(range, vcpu: vcpu)
            }) { _ in
                guard let table = currentTable() else { return nil }
                let mapped = table.leaves(in: range).reduce(UInt64(0)) { total, leaf in
                    let start = max(leaf.guestAddress.rawValue, range.start.rawValue)
                    let end = min(leaf.guestAddress.rawValue + leaf.size, range.end.rawValue)
                    return total + (end - start)
                }
                return mapped == range.size ? nil : "pre-fault \(range) left \(range.size - mapped) bytes unmapped"
            }
        }
    }

    /// A call with an argument no MMU accepts: a typed error of the
    /// predicted kind, nothing changed.
    func callerError(_ slot: SlotLayout, _ which: Int) -> String? {
        switch which {
        case 0:
            let address = GuestPhysicalAddress(1 << 52)
            return call("fault at \(address), beyond the input address size", expected: {
                switch $0 {
                case .guestAddressOutOfRange, .guestRangeOutOfBounds: true
                default: false
                }
            }, { () throws(SLATError) in
                try mmu.handleFault(SecondStageFault(address: address, access: .write), vcpu: vcpu)
            })
        case 1:
            return call("zap in address space 7", expected: { if case .addressSpaceOutOfRange = $0 { true } else { false } },
                        { () throws(SLATError) -> Int in try mmu.zap(slot.frames, addressSpace: 7) })
        case 2:
            let frames = GuestFrameRange(start: GuestFrameNumber(1 << 40), count: 16)
            return call("zap of \(frames), beyond the input address size",
                        expected: { if case .guestRangeOutOfBounds = $0 { true } else { false } },
                        { () throws(SLATError) -> Int in try mmu.zap(frames, addressSpace: nil) })
        case 3:
            let range = HostVirtualRange(start: HostVirtualAddress(slot.hostAddress), size: 0x1000)
            return call("test young with reader slot 99", expected: { if case .readerSlotOutOfRange = $0 { true } else { false } },
                        { () throws(SLATError) -> Bool in try mmu.testYoung(range, context: PageTableContext(readerSlot: 99)) })
        default:
            return call("enable the log of unknown memslot 9", expected: { if case .unknownMemslot = $0 { true } else { false } },
                        { () throws(SLATError) in try mmu.enableDirtyLogging(memslot: 9, protection: .onHarvest) })
        }
    }

    // MARK: The invariants after every call

    func checkAll() -> String? {
        tlb.verifyCoherence()
        if !log.isEmpty { return "simulated TLB: \(log.summary)" }
        guard !tornDown, let table = currentTable() else { return nil }
        let leaves = table.leaves(in: Self.window)
        var run: HostMapping?
        for leaf in leaves {
            if !openInvalidations.isEmpty {
                let frames = GuestFrameRange(start: GuestFrameNumber(leaf.guestAddress.rawValue >> 12), count: leaf.size >> 12)
                if let open = openInvalidations.first(where: { $0.range.overlaps(frames) }) {
                    return "leaf at \(leaf.guestAddress) (\(leaf.size >> 10) KiB) maps frames of \(open) after its notifier start returned"
                }
            }
            if let problem = check(leaf, run: &run) { return problem }
        }
        checkedLeaves = leaves.map(TableLeaf.init)
        return nil
    }

    /// A leaf maps, page run by host run, the frames its guest pages are
    /// backed by now, writable only where the memslot and the host allow.
    func check(_ leaf: LeafMapping, run cached: inout HostMapping?) -> String? {
        let first = leaf.guestAddress.rawValue >> 12
        let pages = leaf.size >> 12
        guard let index = slotIndex(containing: first) else {
            return "leaf at \(leaf.guestAddress) (\(leaf.size >> 10) KiB) outside every present memslot"
        }
        let slot = layout(index)
        guard first + pages <= slot.baseFrame + slot.pages else {
            return "leaf at \(leaf.guestAddress) (\(leaf.size >> 10) KiB) runs past memslot \(slot.id)"
        }
        let writable = leaf.attributes.permissions.contains(.write)
        if writable && readOnly[index] { return "leaf at \(leaf.guestAddress) writable in read-only memslot \(slot.id)" }
        var page: UInt64 = 0
        while page < pages {
            let hva = hostAddress(slot, page: first - slot.baseFrame + page)
            if cached.map({ !$0.range.contains(hva) }) ?? true { cached = guestMemory.hostPages.run(containing: hva) }
            guard let run = cached else {
                return "leaf at \(leaf.guestAddress) maps a page with no host mapping"
            }
            let expected = run.frame(of: hva).address
            let actual = leaf.output.advanced(by: page << 12)
            if actual != expected {
                return "leaf at \(leaf.guestAddress) (\(leaf.size >> 10) KiB) maps page \(page) to \(actual), backed by \(expected)"
            }
            if writable && !run.writable { return "leaf at \(leaf.guestAddress) writable over a read-only host page" }
            let runPages = (run.range.end.rawValue - hva.rawValue) >> 12
            page += max(runPages, 1)
        }
        return nil
    }
}

extension MMUFuzzRun where MMU == ExtendedPageTableMMU<SimulatedTableMemory<TableArena>, SimulatedContextTLB> {
    /// An EPT MMU (4 levels, with or without accessed/dirty flags; 1 GiB
    /// leaves allowed).
    convenience init(x86AccessedDirty: Bool) throws {
        let format = try ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: x86AccessedDirty)
        let arena = try TableArena(pageCount: 1024, prefault: false)
        let log = SimulationLog()
        let tlb = SimulatedContextTLB(format: format, vcpuCount: 1, log: log)
        let (guestMemory, hooks) = try Self.makeGuestMemory()
        let mmu = try ExtendedPageTableMMU(format: format, memory: SimulatedTableMemory(wrapping: arena, watching: [tlb]),
                                           tlb: tlb, guestMemory: guestMemory,
                                           configuration: MMUConfiguration(readerSlots: 4))
        // Each cached entry is judged against the root it was walked from.
        tlb.attachPerRoot { root in HardwareWalker(format: format, memory: arena, root: root) }
        let walker = HardwareWalker(format: format, memory: arena, root: try mmu.root())
        self.init(name: x86AccessedDirty ? "EPT with A/D" : "EPT without A/D", mmu: mmu, arena: arena, log: log, tlb: tlb,
                  guestMemory: guestMemory, hooks: hooks, walker: walker,
                  table: { try? mmu.table() },
                  enable: { (id: UInt32, protection: DirtyLogProtection, choice: Int) throws(SLATError) in
                      let mode: DirtyLogMode? = switch choice {
                      case 1: .writeProtect
                      case 2 where x86AccessedDirty: .dirtyBit
                      default: nil
                      }
                      try mmu.enableDirtyLogging(memslot: id, mode: mode, protection: protection)
                  })
        _ = try mmu.loadRoot(vcpu)
    }
}

extension MMUFuzzRun where MMU == StageTwoMMU<SimulatedTableMemory<TableArena>, SimulatedContextTLB, CountingCacheMaintenance,
                                               SpinningReaderWriterLock> {
    /// A stage-2 MMU (4 KiB granule, 40-bit IPA: 2 MiB and 1 GiB blocks).
    convenience init(stageTwo: Void) throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40)
        let arena = try TableArena(pageCount: 1024, prefault: false)
        let log = SimulationLog()
        let tlb = SimulatedContextTLB(format: format, vcpuCount: 1, context: 1, log: log)
        let (guestMemory, hooks) = try Self.makeGuestMemory()
        let mmu = try StageTwoMMU(format: format, memory: SimulatedTableMemory(wrapping: arena, watching: [tlb]), tlb: tlb,
                                  caches: CountingCacheMaintenance(), vmid: 1, guestMemory: guestMemory,
                                  lock: SpinningReaderWriterLock(), readerSlots: 4)
        let walker = HardwareWalker(format: mmu.format, memory: arena, root: mmu.pageTable.table.root)
        tlb.attach(walker)
        self.init(name: "stage 2", mmu: mmu, arena: arena, log: log, tlb: tlb, guestMemory: guestMemory, hooks: hooks,
                  walker: walker,
                  table: { mmu.isTornDown ? nil : mmu.pageTable.table },
                  enable: { (id: UInt32, protection: DirtyLogProtection, _: Int) throws(SLATError) in
                      try mmu.enableDirtyLogging(memslot: id, protection: protection)
                  })
        _ = try mmu.loadRoot(vcpu)
    }
}
