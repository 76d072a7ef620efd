import SLATCore

/// Generates random ``TableOperation``s over a guest window, seeded and
/// reproducible, keeping its own ``ReferenceModel`` of what it generated so
/// that splits and merges target real leaves.
///
/// Ranges are granule-aligned and inside the window; leaves go up to the
/// largest leaf level of which two fit in the window. Outputs are the guest
/// address plus ``outputOffset`` most of the time (so neighbouring maps can
/// merge), another aligned output otherwise. Permissions are drawn from
/// the sets the format can encode.
public struct OperationGenerator<Format: PageTableFormat>: Sendable {
    /// Relative frequencies of each kind of operation.
    @frozen
    public struct Weights: Hashable, Sendable {
        /// Relative weight of each operation kind.
        public var map = 25, unmap = 12, protect = 15, split = 10, merge = 8, invalidate = 5, access = 25
        /// The default mix.
        public init() {}
        var total: Int { map + unmap + protect + split + merge + invalidate + access }
    }

    /// The format.
    public let format: Format
    /// Where operations happen.
    public let window: GuestPhysicalRange
    /// Output = guest + this, for mappings that may merge.
    public let outputOffset: UInt64
    /// vCPUs that accesses come from.
    public let vcpuCount: Int
    /// The frequencies.
    public var weights: Weights
    /// Leaf levels used, smallest first.
    public let levels: [Int]
    /// What the operations generated so far should have produced.
    public private(set) var model: ReferenceModel
    var random: SimulationRandom
    let permissionChoices: [Permissions]

    /// A generator.
    ///
    /// - Parameters:
    ///   - window: granule-aligned, at least two pages.
    ///   - outputOffset: aligned to the largest leaf size used.
    ///   - format: the tables' format (leaf sizes, permissions it can encode).
    ///   - seed: the random seed: the same seed gives the same sequence.
    ///   - vcpuCount: how many vCPUs `.access` operations are spread over.
    ///   - weights: how often each kind of operation is generated.
    public init(format: Format, window: GuestPhysicalRange, seed: UInt64, vcpuCount: Int = 2,
                outputOffset: UInt64 = 1 << 36, weights: Weights = Weights()) {
        // A test's own configuration: SLATSim is test support, never on a
        // VMM's path, and stopping here is that test failing at its setup.
        precondition(window.start.isAligned(to: format.pageSize) && window.size % format.pageSize == 0
                     && window.size >= 2 * format.pageSize, "window must be granule-aligned and hold two pages")
        self.format = format
        self.window = window
        self.outputOffset = outputOffset
        self.vcpuCount = vcpuCount
        self.weights = weights
        self.levels = (0...format.rootLevel).filter { format.canHoldLeaf(atLevel: $0) && 2 * format.entrySize(atLevel: $0) <= window.size }
        self.model = ReferenceModel(format: format)
        self.random = SimulationRandom(seed: seed)
        self.permissionChoices = [Permissions.read, .readWrite, .readExecute, .all, .execute].filter { format.canEncode($0) }
    }

    /// `count` operations (each also applied to ``model``).
    public mutating func operations(_ count: Int) -> [TableOperation] {
        (0..<count).map { _ in next() }
    }

    /// The next operation (also applied to ``model``).
    public mutating func next() -> TableOperation {
        var roll = random.below(weights.total)
        let operation: TableOperation
        if roll < weights.map { operation = makeMap() } else {
            roll -= weights.map
            if roll < weights.unmap { operation = .unmap(randomRange()) } else {
                roll -= weights.unmap
                if roll < weights.protect { operation = makeProtect() } else {
                    roll -= weights.protect
                    if roll < weights.split { operation = makeSplit() } else {
                        roll -= weights.split
                        if roll < weights.merge { operation = makeMerge() } else {
                            roll -= weights.merge
                            if roll < weights.invalidate {
                                operation = .invalidate(random.chance(50) ? randomRange() : nil)
                            } else {
                                operation = makeAccess()
                            }
                        }
                    }
                }
            }
        }
        Self.apply(operation, to: &model, format: format)
        return operation
    }

    /// What `operation` does to a reference model (how a harness keeps its
    /// model in step when the table accepted the operation).
    public static func apply(_ operation: TableOperation, to model: inout ReferenceModel, format: Format) {
        switch operation {
        case .map(let range, let output, let permissions, _), .split(let range, let output, let permissions, _),
             .merge(let range, let output, let permissions):
            model.map(range, to: output, permissions: permissions)
        case .unmap(let range):
            model.unmap(range)
        case .protect(let range, let grant, let revoke):
            model.changePermissions(range, grant: grant, revoke: revoke, format: format)
        case .invalidate, .access:
            break
        }
    }

    // MARK: Choices

    mutating func randomLevel() -> Int {
        // Smaller leaves more often.
        for level in levels.dropLast() where random.chance(60) { return level }
        return levels.last ?? 0
    }

    mutating func alignedStart(size: UInt64) -> UInt64 {
        let first = (window.start.rawValue + size - 1) & ~(size - 1)
        let slots = (window.end.rawValue - first) / size
        return first + random.below(slots) * size
    }

    mutating func randomRange() -> GuestPhysicalRange {
        let size = format.entrySize(atLevel: randomLevel())
        let start = alignedStart(size: size)
        let maxUnits = min(4, (window.end.rawValue - start) / format.pageSize)
        let pages = random.chance(50) ? size / format.pageSize : 1 + random.below(maxUnits)
        let length = min(pages * format.pageSize, window.end.rawValue - start)
        // Sometimes start off the leaf boundary so huge leaves get split.
        let shift = random.chance(30) && length > format.pageSize ? format.pageSize : 0
        return GuestPhysicalRange(start: GuestPhysicalAddress(start + shift), size: length - shift)
    }

    mutating func randomPermissions() -> Permissions {
        permissionChoices[random.below(permissionChoices.count)]
    }

    mutating func makeMap() -> TableOperation {
        let level = randomLevel()
        let size = format.entrySize(atLevel: level)
        let start = alignedStart(size: size)
        let units = 1 + random.below(min(2, (window.end.rawValue - start) / size))
        let range = GuestPhysicalRange(start: GuestPhysicalAddress(start), size: units * size)
        var output = start + outputOffset
        if random.chance(20) { output += (1 + random.below(UInt64(8))) * size }
        return .map(range, output: HostPhysicalAddress(output), permissions: randomPermissions(), maximumLevel: level)
    }

    mutating func makeProtect() -> TableOperation {
        let choices: [Permissions] = [.read, .write, .execute, .readWrite, .all]
        let change = choices[random.below(choices.count)]
        return random.chance(60) ? .protect(randomRange(), grant: [], revoke: change)
                                 : .protect(randomRange(), grant: change, revoke: [])
    }

    mutating func mappedPage() -> (UInt64, ModelTranslation)? {
        guard !model.pages.isEmpty else { return nil }
        for _ in 0..<8 {
            let page = window.start.rawValue + random.below(window.size / format.pageSize) * format.pageSize
            if let translation = model.translation(of: GuestPhysicalAddress(page)) { return (page, translation) }
        }
        return model.pages.min { $0.key < $1.key }.map { ($0.key * model.pageSize, $0.value) }
    }

    mutating func makeSplit() -> TableOperation {
        guard let (page, translation) = mappedPage() else { return makeMap() }
        let range = GuestPhysicalRange(start: GuestPhysicalAddress(page), size: format.pageSize)
        return .split(range, output: translation.output, permissions: translation.permissions, level: 0)
    }

    mutating func makeMerge() -> TableOperation {
        guard let top = levels.last, top > 0 else { return makeMap() }
        let level = levels.count > 1 ? levels[1 + random.below(levels.count - 1)] : top
        let size = format.entrySize(atLevel: level)
        let start = alignedStart(size: size)
        return .merge(GuestPhysicalRange(start: GuestPhysicalAddress(start), size: size),
                      output: HostPhysicalAddress(start + outputOffset), permissions: randomPermissions())
    }

    mutating func makeAccess() -> TableOperation {
        let kinds: [AccessKind] = [.read, .read, .write, .executePrivileged]
        let kind = kinds[random.below(kinds.count)]
        let vcpu = random.below(vcpuCount)
        if random.chance(75), let (page, _) = mappedPage() {
            return .access(GuestPhysicalAddress(page + random.below(format.pageSize / 8) * 8), kind, vcpu: vcpu)
        }
        let address = window.start.rawValue + random.below(window.size / 8) * 8
        return .access(GuestPhysicalAddress(address), kind, vcpu: vcpu)
    }
}
