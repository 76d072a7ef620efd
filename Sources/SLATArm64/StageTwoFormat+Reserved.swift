import SLATCore

/// The RES0 bits of stage-2 descriptors, for tools that read images they
/// did not write.
extension StageTwoFormat {
    /// The bits of a valid descriptor at `level` that the architecture
    /// defines as RES0 for this configuration and that are set in `entry`
    /// (zero for a well-formed descriptor).
    ///
    /// RES0: bits 50:48 (bit 50 with FEAT_LPA2, where 49:48 are address
    /// bits); the address bits between bit 12 and the granule (16 and 64
    /// KiB, except OA[51:48] in bits 15:12 with a 52-bit PA); in a block the address bits below the block size; in a
    /// table descriptor bits 63:59 (stage 2 has no hierarchical attributes);
    /// in a leaf bit 53 without FEAT_XNX. Address bits above the PA size
    /// are not included: the walk reports them as an address size fault.
    @inlinable
    public func reservedBits(inEntry entry: UInt64, atLevel level: Int) -> UInt64 {
        var reserved: UInt64 = lpa2 ? 1 << 50 : 0b111 << 48
        reserved |= (UInt64(1) << UInt64(granuleShift) - 1) & ~UInt64(0xFFF) & ~highAddressMask
        if level > 0 && isTable(entry, atLevel: level) {
            reserved |= 0b11111 << 59
        } else {
            let leafSize = entrySize(atLevel: level)
            reserved |= tableAddressMask & (leafSize &- 1)
            if !executeNeverSplit { reserved |= 1 << 53 }
        }
        return entry & reserved
    }
}
