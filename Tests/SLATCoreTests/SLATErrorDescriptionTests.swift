import SLATCore
import Testing

/// Error descriptions print values as what they are.
@Suite("SLATError descriptions")
struct SLATErrorDescriptionTests {
    @Test("A frame prints as a gfn with its guest address, never as a bare number")
    func framePrintsAsGfnWithAddress() {
        #expect(SLATError.noMemslot(GuestFrameNumber(0x10000)).description
            == "no memslot holds gfn 0x10000 (gpa 0x10000000) (emulate the access as MMIO)")
    }

    @Test("Sizes print in hexadecimal with their unit")
    func sizesPrintWithUnits() {
        let text = SLATError.misalignedSize(0x201000, alignment: 0x200000).description
        #expect(text == "size 0x201000 bytes (2052 KiB) is not a multiple of 0x200000 bytes (2 MiB)")
    }

    @Test("A negative pfn cache length prints as negative")
    func negativeLengthPrintsNegative() {
        #expect(SLATError.pfnCacheLengthOutOfPage(offset: 0x40, length: -8).description.contains("-8 bytes"))
    }

    @Test("Addresses print with their address space")
    func addressesNameTheirSpace() {
        #expect(SLATError.hostAddressNotMapped(HostVirtualAddress(0x7f00_0000_1000)).description
            == "the host has no page mapped at hva 0x7f0000001000")
        #expect(SLATError.guestAddressOutOfRange(GuestPhysicalAddress(0x1_0000_0000_0000), limit: 1 << 48).description
            == "guest address gpa 0x1000000000000 is beyond the input address space, which ends at gpa 0x1000000000000")
    }

    @Test("A memslot reaching past 2^52 bytes of guest memory is refused")
    func memslotBeyondAnyIPAIsRefused() {
        let memory = GuestMemory()
        #expect(throws: SLATError.invalidMemslot(slot: 9)) {
            try memory.addMemslot(Memslot(id: 9, baseFrame: GuestFrameNumber(1 << 40), pageCount: 1,
                                          hostAddress: HostVirtualAddress(0x1000)))
        }
        #expect(throws: SLATError.invalidMemslot(slot: 10)) {
            try memory.addMemslot(Memslot(id: 10, baseFrame: GuestFrameNumber((1 << 40) - 1), pageCount: 2,
                                          hostAddress: HostVirtualAddress(0x1000)))
        }
    }

    @Test("A memslot ending exactly at 2^52 bytes is accepted")
    func memslotEndingAt2To52IsAccepted() throws {
        try GuestMemory().addMemslot(Memslot(id: 11, baseFrame: GuestFrameNumber((1 << 40) - 1), pageCount: 1,
                                             hostAddress: HostVirtualAddress(0x1000)))
    }
}
