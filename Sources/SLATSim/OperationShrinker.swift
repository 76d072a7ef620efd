import SLATCore

/// A failing operation sequence reduced to a minimal one.
public struct SequenceFailure: Sendable, CustomStringConvertible {
    /// The seed that generated the original sequence.
    public var seed: UInt64
    /// Length of the original failing sequence.
    public var originalCount: Int
    /// The shrunk sequence: it still fails, and removing any one operation
    /// (or shrinking any one operation further) makes it pass.
    public var operations: [TableOperation]
    /// What the property said about the shrunk sequence.
    public var message: String

    public var description: String {
        var text = "SLATSim: operation sequence failed — seed 0x\(String(seed, radix: 16)), "
            + "\(originalCount) operations, shrunk to \(operations.count):"
        for (index, operation) in operations.enumerated() { text += "\n  \(index): \(operation)" }
        text += "\n  → \(message)"
        return text
    }
}

/// Runs generated operation sequences against a property and shrinks a
/// failing one to a minimal failing sequence.
///
/// A *property* replays a whole sequence from a fresh state (new tables,
/// TLBs, model) and returns `nil` if it held, or a message saying what went
/// wrong. Replays must be deterministic for shrinking to be meaningful.
public enum OperationShrinker {
    /// Generates `count` operations from `seed` with `generator` and checks
    /// `property`; on failure shrinks the sequence, prints the failure
    /// (seed first, to reproduce it) and returns it.
    public static func check<Format>(
        seed: UInt64, count: Int, generator: OperationGenerator<Format>,
        property: ([TableOperation]) -> String?
    ) -> SequenceFailure? {
        var generator = generator
        let operations = generator.operations(count)
        guard let message = property(operations) else { return nil }
        let (shrunk, finalMessage) = shrink(operations, message: message, pageSize: generator.format.pageSize, property: property)
        let failure = SequenceFailure(seed: seed, originalCount: count, operations: shrunk, message: finalMessage)
        print(failure)
        return failure
    }

    /// Removes chunks (halves, quarters, ... single operations) and
    /// simplifies single operations while `property` still fails.
    ///
    /// - Parameters:
    ///   - operations: the failing sequence.
    ///   - property: runs a sequence and returns a message when it fails, `nil` when it passes.
    ///   - message: what the property said about `operations`.
    ///   - pageSize: the granule ranges are narrowed to (at least one page).
    /// - Returns: the minimal failing sequence and the property's message for it.
    public static func shrink(
        _ operations: [TableOperation], message: String, pageSize: UInt64 = 4096,
        property: ([TableOperation]) -> String?
    ) -> ([TableOperation], String) {
        var current = operations
        var currentMessage = message
        var progress = true
        while progress {
            progress = false
            // Failures depend on a prefix: cut everything after the shortest failing prefix.
            if let (prefixLength, prefixMessage) = shortestFailingPrefix(current, property: property), prefixLength < current.count {
                current = Array(current.prefix(prefixLength))
                currentMessage = prefixMessage
                progress = true
            }
            var chunk = max(1, current.count / 2)
            while chunk >= 1 {
                var start = 0
                while start < current.count {
                    var candidate = current
                    candidate.removeSubrange(start..<min(start + chunk, candidate.count))
                    if !candidate.isEmpty, let failing = property(candidate) {
                        current = candidate
                        currentMessage = failing
                        progress = true
                    } else {
                        start += chunk
                    }
                }
                chunk /= 2
            }
            for index in current.indices {
                for simpler in simplifications(of: current[index], pageSize: pageSize) {
                    var candidate = current
                    candidate[index] = simpler
                    if let failing = property(candidate) {
                        current = candidate
                        currentMessage = failing
                        progress = true
                        break
                    }
                }
            }
        }
        return (current, currentMessage)
    }

    static func shortestFailingPrefix(_ operations: [TableOperation], property: ([TableOperation]) -> String?) -> (Int, String)? {
        // Binary search assumes monotonic prefixes; verify the result.
        var low = 1
        var high = operations.count
        var found: (Int, String)?
        while low <= high {
            let middle = (low + high) / 2
            if let message = property(Array(operations.prefix(middle))) {
                found = (middle, message)
                high = middle - 1
            } else {
                low = middle + 1
            }
        }
        return found
    }

    /// Smaller variants of one operation: ranges cut to their first page or
    /// first half, context invalidations to nothing simpler.
    static func simplifications(of operation: TableOperation, pageSize: UInt64) -> [TableOperation] {
        func smaller(_ range: GuestPhysicalRange) -> [GuestPhysicalRange] {
            let page: UInt64 = range.size >= pageSize && range.size % pageSize == 0 ? pageSize : range.size
            var result: [GuestPhysicalRange] = []
            let half = (range.size / 2) & ~(page - 1)
            if half >= page && half < range.size { result.append(GuestPhysicalRange(start: range.start, size: half)) }
            if page < range.size && page != half { result.append(GuestPhysicalRange(start: range.start, size: page)) }
            return result
        }
        switch operation {
        case .unmap(let range): return smaller(range).map { .unmap($0) }
        case .protect(let range, let grant, let revoke): return smaller(range).map { .protect($0, grant: grant, revoke: revoke) }
        case .invalidate(let range?): return smaller(range).map { .invalidate($0) }
        default: return []
        }
    }
}
