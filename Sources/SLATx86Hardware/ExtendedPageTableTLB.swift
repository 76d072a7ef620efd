import SLATCore
import SLATx86
import Synchronization
#if arch(x86_64)
import CSLATx86Hardware
#endif

/// The INVEPT types (Intel SDM Vol. 3C, "INVEPT — Invalidate Translations
/// Derived from EPT"): the register operand.
@frozen
public enum ExtendedPageTableInvalidationType: UInt64, Sendable, Hashable {
    /// Type 1: guest-physical and combined mappings tagged with one EPTP's
    /// EP4TA (bits 51:12 of the descriptor's EPTP).
    case singleContext = 1
    /// Type 2: the mappings of every EPTP.
    case allContexts = 2
}

/// Issues INVEPT on the calling CPU. The hardware issuer is
/// ``INVEPTInstruction`` (x86-64 builds only); tests and fault-injection
/// builds supply their own.
public protocol ExtendedPageTableInvalidator: Sendable {
    /// `INVEPT` of `type` with the descriptor `{pointer, 0}`; returns whether
    /// it succeeded (no VMfail). Called in VMX root operation.
    func invalidate(_ type: ExtendedPageTableInvalidationType, pointer: UInt64) -> Bool
}

#if arch(x86_64)
/// The `INVEPT` instruction itself.
public struct INVEPTInstruction: ExtendedPageTableInvalidator {
    /// The issuer.
    @inlinable public init() {}

    /// `INVEPT type, [descriptor]`, checking CF and ZF.
    @inlinable
    public func invalidate(_ type: ExtendedPageTableInvalidationType, pointer: UInt64) -> Bool {
        slat_invept(type.rawValue, pointer) == 0
    }
}
#endif

/// How an invalidation reaches the other CPUs. INVEPT acts only on the
/// logical processor that executes it (SDM Vol. 3C, "Invalidation of
/// Cached Mappings"); there is no broadcast form, so a VMM with several
/// CPUs makes each CPU that may hold the context's mappings invalidate
/// before it next enters the guest, and waits for those in guest mode
/// (KVM's `kvm_flush_remote_tlbs`: a request on every vCPU and a kick).
public protocol ProcessorInvalidationBroadcast: Sendable {
    /// Called after the local INVEPT of `type` for `pointer`; returns only
    /// when no other CPU can use a translation the invalidation removed.
    func invalidateOnOtherProcessors(_ type: ExtendedPageTableInvalidationType, pointer: UInt64)
}

/// A VMM running the context on one CPU only: nothing to reach.
public struct SingleProcessor: ProcessorInvalidationBroadcast {
    /// The broadcast for one CPU.
    @inlinable public init() {}
    /// Does nothing.
    @inlinable public func invalidateOnOtherProcessors(_ type: ExtendedPageTableInvalidationType, pointer: UInt64) {}
}

/// The TLB of one VM on Intel EPT: SLATCore's `TLB` as INVEPT.
///
/// | request | INVEPT |
/// |---|---|
/// | ``invalidate(address:level:)`` | single-context (Intel has no by-address INVEPT) |
/// | ``invalidate(range:)`` | single-context |
/// | ``invalidateAll()`` | single-context |
/// | ``invalidateAllContexts()`` | all-context |
///
/// A single-context request becomes all-context when the CPU lacks the
/// single-context type (IA32_VMX_EPT_VPID_CAP bit 25) or no pointer has
/// been loaded yet. Each request is issued on the calling CPU, then handed
/// to the ``ProcessorInvalidationBroadcast`` for the others.
///
/// The context is the EPTP the VMM loads (``load(pointer:)``, from
/// `ExtendedPageTableMMU.reloadRoot(_:addressSpace:)`); a VMM that
/// replaces roots (`ExtendedPageTableMMU.invalidateAllRoots()`) while
/// vCPUs still run on the old EPTP creates it with
/// `wholeFlushesAllContexts` so that ``invalidateAll()`` reaches both.
public final class ExtendedPageTableTLB<Invalidator: ExtendedPageTableInvalidator, Broadcast: ProcessorInvalidationBroadcast>: TLB {
    /// The INVEPT issuer.
    public let invalidator: Invalidator
    /// How invalidations reach the other CPUs.
    public let broadcast: Broadcast
    /// Whether the CPU has single-context INVEPT.
    public let hasSingleContext: Bool
    /// Whether ``invalidateAll()`` is all-context.
    public let wholeFlushesAllContexts: Bool
    @usableFromInline let pointerWord: Atomic<UInt64>
    @usableFromInline let singleContextCount = Atomic<Int>(0)
    @usableFromInline let allContextCount = Atomic<Int>(0)
    @usableFromInline let failureCount = Atomic<Int>(0)

    /// A TLB for the context `pointer` (0: not loaded yet).
    public init(pointer: UInt64 = 0, hasSingleContext: Bool, wholeFlushesAllContexts: Bool = false,
                invalidator: Invalidator, broadcast: Broadcast) {
        self.pointerWord = Atomic(pointer)
        self.hasSingleContext = hasSingleContext
        self.wholeFlushesAllContexts = wholeFlushesAllContexts
        self.invalidator = invalidator
        self.broadcast = broadcast
    }

    /// Records `pointer` as the context's EPTP (the value written to the VMCS).
    public func load(pointer: ExtendedPageTablePointer) {
        pointerWord.store(pointer.rawValue, ordering: .releasing)
    }

    /// The context's EPTP, 0 before ``load(pointer:)``.
    public var pointer: UInt64 { pointerWord.load(ordering: .acquiring) }

    /// Single-context INVEPTs issued on the calling CPUs.
    public var singleContextInvalidations: Int { singleContextCount.load(ordering: .relaxed) }
    /// All-context INVEPTs issued on the calling CPUs.
    public var allContextInvalidations: Int { allContextCount.load(ordering: .relaxed) }
    /// INVEPTs that failed (VMfail: the CPU refused the type or descriptor).
    public var failedInvalidations: Int { failureCount.load(ordering: .relaxed) }

    /// One INVEPT here, then the broadcast. A single-context request falls
    /// back to all-context without the type or a pointer; a failed
    /// single-context INVEPT is retried as all-context.
    func issue(_ requested: ExtendedPageTableInvalidationType) {
        let pointer = pointerWord.load(ordering: .acquiring)
        var type = requested
        if type == .singleContext && (!hasSingleContext || pointer == 0) { type = .allContexts }
        if !invalidator.invalidate(type, pointer: pointer) {
            failureCount.add(1, ordering: .relaxed)
            if type == .singleContext {
                type = .allContexts
                if !invalidator.invalidate(type, pointer: pointer) { failureCount.add(1, ordering: .relaxed) }
            }
        }
        if type == .singleContext {
            singleContextCount.add(1, ordering: .relaxed)
        } else {
            allContextCount.add(1, ordering: .relaxed)
        }
        broadcast.invalidateOnOtherProcessors(type, pointer: pointer)
    }

    /// Single-context INVEPT (`level` is not used: INVEPT takes no address).
    public func invalidate(address: GuestPhysicalAddress, level: LeafLevel?) { issue(.singleContext) }

    /// Single-context INVEPT.
    public func invalidate(range: GuestPhysicalRange) { issue(.singleContext) }

    /// Single-context INVEPT (all-context with `wholeFlushesAllContexts`).
    public func invalidateAll() { issue(wholeFlushesAllContexts ? .allContexts : .singleContext) }

    /// All-context INVEPT: every EPTP's mappings, on every CPU.
    public func invalidateAllContexts() { issue(.allContexts) }

    /// A single-context INVEPT removes every cached translation of the
    /// range and its cached walks, so a table→huge-leaf merge may ask for the
    /// range (it costs the same as the whole context).
    public var supportsRangeInvalidation: Bool { true }
}
