/// Options of an ``ExtendedPageTableMMU``.
@frozen
public struct MMUConfiguration: Sendable, Hashable {
    /// Roots (address spaces) the VM uses: 1, or 2 with SMM.
    public var addressSpaceCount: Int
    /// Threads (vCPUs and lockless walkers) that may walk at once; each uses
    /// its own reader slot through its `SLATCore/PageTableContext`.
    public var readerSlots: Int
    /// The NX-huge-page mitigation: huge leaves are never executable; an
    /// instruction fetch maps 4 KiB and marks the split for recovery.
    public var nxHugePages: Bool
    /// The largest leaf height faults may install (0 = 4 KiB, 1 = 2 MiB,
    /// 2 = 1 GiB).
    public var maximumLeafLevel: Int
    /// Leaves a zap or protection pass handles per hold of the exclusive
    /// lock before it flushes, drops and retakes the lock.
    public var yieldInterval: Int
    /// Compare-and-exchange attempts of one fast page fault before it gives
    /// up and takes the slow path.
    public var fastFaultAttempts: Int
    /// Whether faults take the MMU lock exclusively instead of shared: a
    /// baseline for measuring what the shared design buys (the walk still
    /// exchanges every entry). Off by default.
    public var faultsTakeLockExclusively: Bool

    /// A configuration; defaults: one address space, 64 reader slots, NX
    /// huge pages off, 1 GiB leaves allowed, yield every 4096 leaves,
    /// 4 fast-fault attempts.
    @inlinable
    public init(
        addressSpaceCount: Int = 1, readerSlots: Int = 64, nxHugePages: Bool = false,
        maximumLeafLevel: Int = 2, yieldInterval: Int = 4096, fastFaultAttempts: Int = 4,
        faultsTakeLockExclusively: Bool = false
    ) {
        self.faultsTakeLockExclusively = faultsTakeLockExclusively
        self.addressSpaceCount = addressSpaceCount
        self.readerSlots = readerSlots
        self.nxHugePages = nxHugePages
        self.maximumLeafLevel = maximumLeafLevel
        self.yieldInterval = yieldInterval
        self.fastFaultAttempts = fastFaultAttempts
    }
}
