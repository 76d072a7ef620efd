import CHypervisor
import SLATCore

// Output on the Bochs debug port 0xE9 (port_e9_hack). Only the BSP
// prints; the APs leave their figures in their vCPU objects.

func put(_ text: StaticString) {
    text.withUTF8Buffer { bytes in
        for byte in bytes { hv_outb(0xe9, byte) }
    }
}

func putDecimal(_ value: UInt64) {
    var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                 UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    var count = 0
    var rest = value
    withUnsafeMutableBytes(of: &digits) { buffer in
        repeat {
            buffer[count] = UInt8(truncatingIfNeeded: 48 &+ rest % 10)
            rest /= 10
            count += 1
        } while rest != 0
        while count > 0 {
            count -= 1
            hv_outb(0xe9, buffer[count])
        }
    }
}

func putDecimal(_ value: Int) { putDecimal(UInt64(truncatingIfNeeded: value)) }

func putHex(_ value: UInt64) {
    put("0x")
    var shift = 60
    while shift >= 0 {
        let nibble = UInt8(truncatingIfNeeded: (value >> UInt64(shift)) & 0xf)
        hv_outb(0xe9, nibble < 10 ? 48 &+ nibble : 87 &+ nibble)
        shift -= 4
    }
}

/// ` name=value` in decimal.
func field(_ name: StaticString, _ value: Int) {
    put(" ")
    put(name)
    put("=")
    putDecimal(value)
}

/// ` name=0x…`.
func hexField(_ name: StaticString, _ value: UInt64) {
    put(" ")
    put(name)
    put("=")
    putHex(value)
}

/// A short name for an error the hypervisor reports.
func describe(_ error: SLATError) -> StaticString {
    switch error {
    case .noMemslot: "noMemslot"
    case .readOnlyMemslot: "readOnlyMemslot"
    case .hostAddressNotMapped: "hostAddressNotMapped"
    case .hostPageReadOnly: "hostPageReadOnly"
    case .outOfTableMemory: "outOfTableMemory"
    case .tornDown: "tornDown"
    default: "other SLAT error"
    }
}
