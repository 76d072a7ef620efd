import SLATCore

/// The sequential-order oracle of an ``ExplorationScenario``: the final
/// state of a concurrent execution must equal the final state of *some*
/// sequential execution of the same steps, one step at a time, in an order
/// that keeps each thread's program order (the tables are "the result of
/// some sequential order of the operations", the linearizability of the
/// end state).
///
/// `summary` reduces a world to what the order may decide (for page
/// tables: each page's output and permissions, not the accessed and dirty
/// flags, not which table pages hold them). The sequential orders are run
/// once per scenario (on fresh worlds, each on one logical thread) and
/// their summaries kept; an order whose execution fails (a step that only
/// completes beside another thread) is not a possible result. Scenarios
/// with more than ``orderLimit`` orders skip the oracle.
public struct SequentialOracle<World>: @unchecked Sendable {
    // @unchecked Sendable: `summary` runs on the exploring thread only,
    // after an execution's threads have all finished.

    /// The state a sequential order may decide, as text.
    public var summary: (World) -> String
    /// The most orders tried (above it the oracle is skipped).
    public var orderLimit: Int

    /// An oracle comparing `summary` of the final worlds.
    public init(orderLimit: Int = 5_000, summary: @escaping (World) -> String) {
        self.summary = summary
        self.orderLimit = orderLimit
    }

    /// The number of interleavings of threads with `counts` steps that keep
    /// each thread's order (a multinomial coefficient), or `nil` above `limit`.
    static func orderCount(_ counts: [Int], limit: Int) -> Int? {
        var total = 1
        var placed = 0
        for count in counts {
            for index in 0..<count {
                placed += 1
                total = total * placed / (index + 1)
                if total > limit { return nil }
            }
        }
        return total
    }

    /// Every interleaving of the threads' steps in program order, as thread
    /// indices.
    static func orders(_ counts: [Int]) -> [[Int]] {
        var result: [[Int]] = []
        var remaining = counts
        var current: [Int] = []
        func extend() {
            if remaining.allSatisfy({ $0 == 0 }) {
                result.append(current)
                return
            }
            for thread in remaining.indices where remaining[thread] > 0 {
                remaining[thread] -= 1
                current.append(thread)
                extend()
                current.removeLast()
                remaining[thread] += 1
            }
        }
        extend()
        return result
    }
}

/// The summaries of a scenario's sequential orders, computed at first use.
final class SequentialSummaries: @unchecked Sendable {
    // @unchecked Sendable: read and written under `lock` only.
    let lock = PThreadLocked<Set<String>?>(nil)
}

extension ExplorationScenario {
    /// The summaries of every sequential order of the steps (`nil` when
    /// the scenario has no oracle or too many orders).
    func sequentialSummaries() -> Set<String>? {
        guard let oracle = sequentialOracle else { return nil }
        if let known = sequentialCache.lock.withLock({ $0 }) { return known }
        let counts = threads.map(\.count)
        guard SequentialOracle<World>.orderCount(counts, limit: oracle.orderLimit) != nil else { return nil }
        var summaries: Set<String> = []
        for order in SequentialOracle<World>.orders(counts) {
            var next = Array(repeating: 0, count: threads.count)
            var steps: [Step] = []
            for thread in order {
                steps.append(threads[thread][next[thread]])
                next[thread] += 1
            }
            var sequential = self
            sequential.threads = [steps]
            sequential.sequentialOracle = nil
            var finalWorld: World?
            let check = self.check
            sequential.check = { world in
                finalWorld = world
                return check(world)
            }
            let record = sequential.execute(policy: RandomSchedulingPolicy(seed: 0))
            if record.completed, record.failure == nil, let finalWorld { summaries.insert(oracle.summary(finalWorld)) }
        }
        sequentialCache.lock.withLock { $0 = summaries }
        return summaries
    }

    /// The sequential oracle's verdict on a finished world: `nil` when its
    /// summary is one a sequential order gives (or there is no oracle).
    func sequentialFailure(_ world: World) -> String? {
        guard let oracle = sequentialOracle, let summaries = sequentialSummaries() else { return nil }
        let summary = oracle.summary(world)
        if summaries.contains(summary) { return nil }
        return "the final state matches no sequential order of the steps (\(summaries.count) distinct sequential results): \(summary)"
    }
}

/// What a sequential order of operations decides about `table` over
/// `range`: each page's output and permissions, as maximal runs of pages
/// with consecutive outputs and equal permissions — not the accessed and
/// dirty flags, not the leaf sizes or the table pages, so a 2 MiB leaf and
/// the 512 pages it was split into read the same.
///
/// Reads the tables without a lock: call it with no writer running.
public func translationSummary<Format: PageTableFormat, Memory: TableMemory>(
    of table: PageTable<Format, Memory>, in range: GuestPhysicalRange
) -> String {
    var runs: [String] = []
    // The run being extended: first page, end, output of its first page, permissions.
    var current: (start: UInt64, end: UInt64, output: UInt64, permissions: Permissions)?
    func close() {
        guard let run = current else { return }
        let output = HostPhysicalAddress(run.output)
        runs.append("\(GuestPhysicalAddress(run.start))+\(formatSize(run.end - run.start)) → \(output) \(run.permissions)")
        current = nil
    }
    for leaf in table.leaves(in: range) {
        let start = max(leaf.guestAddress.rawValue, range.start.rawValue)
        let end = min(leaf.guestAddress.rawValue &+ leaf.size, range.end.rawValue)
        guard start < end else { continue }
        let output = leaf.output.rawValue &+ (start - leaf.guestAddress.rawValue)
        let permissions = leaf.attributes.permissions
        if let run = current, run.end == start, run.permissions == permissions,
           run.output &+ (run.end - run.start) == output {
            current?.end = end
        } else {
            close()
            current = (start, end, output, permissions)
        }
    }
    close()
    return runs.joined(separator: ", ")
}
