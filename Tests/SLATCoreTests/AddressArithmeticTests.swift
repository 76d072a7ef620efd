import SLATCore
import Testing

/// The address helpers accept every value a caller can pass: no alignment
/// or range bound traps.
@Suite("Address arithmetic")
struct AddressArithmeticTests {
    @Test("A power-of-two alignment masks")
    func powerOfTwoAlignment() {
        let address = GuestPhysicalAddress(0x1234_5678)
        #expect(address.alignedDown(to: 0x1000) == GuestPhysicalAddress(0x1234_5000))
        #expect(address.alignedUp(to: 0x1000) == GuestPhysicalAddress(0x1234_6000))
        #expect(!address.isAligned(to: 0x1000))
        #expect(GuestPhysicalAddress(0x20_0000).isAligned(to: 0x20_0000))
    }

    @Test("Any other alignment divides instead of trapping")
    func nonPowerOfTwoAlignment() {
        let address = GuestPhysicalAddress(100)
        #expect(address.alignedDown(to: 3) == GuestPhysicalAddress(99))
        #expect(address.alignedUp(to: 3) == GuestPhysicalAddress(102))
        #expect(!address.isAligned(to: 3))
        #expect(GuestPhysicalAddress(0x3000).isAligned(to: 0x3000))
        #expect(GuestPhysicalAddress(99).alignedUp(to: 3) == GuestPhysicalAddress(99))
    }

    @Test("Alignments 0 and 1 impose nothing")
    func zeroAndOneImposeNothing() {
        let address = GuestPhysicalAddress(0x1235)
        for alignment: UInt64 in [0, 1] {
            #expect(address.isAligned(to: alignment))
            #expect(address.alignedDown(to: alignment) == address)
            #expect(address.alignedUp(to: alignment) == address)
        }
    }

    @Test("Aligning up past the 64-bit space gives nil")
    func alignedUpOverflowIsNil() {
        #expect(GuestPhysicalAddress(UInt64.max - 5).alignedUp(to: 0x1000) == nil)
        #expect(GuestPhysicalAddress(UInt64.max).alignedUp(to: 7) == nil)   // 2^64 − 1 ≡ 1 (mod 7)
    }

    @Test("A range from start to end holds end − start units")
    func rangeFromStartToEnd() throws {
        let range = try GuestPhysicalRange(start: GuestPhysicalAddress(0x1000), end: GuestPhysicalAddress(0x3000))
        #expect(range.size == 0x2000)
        #expect(try GuestPhysicalRange(start: GuestPhysicalAddress(0x1000), end: GuestPhysicalAddress(0x1000)).isEmpty)
    }

    @Test("A range whose end is below its start is refused with rangeEndBelowStart")
    func rangeEndBelowStartThrows() {
        #expect(throws: SLATError.rangeEndBelowStart(start: 0x3000, end: 0x1000)) {
            _ = try GuestPhysicalRange(start: GuestPhysicalAddress(0x3000), end: GuestPhysicalAddress(0x1000))
        }
        #expect("\(SLATError.rangeEndBelowStart(start: 0x3000, end: 0x1000))" == "a range from 0x3000 to 0x1000 ends below its start")
    }
}
