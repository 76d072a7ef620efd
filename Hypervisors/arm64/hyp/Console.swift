import _Volatile
import Synchronization

/// The PL011 UART of QEMU's `virt` machine (data register at 0x0900_0000),
/// shared by both CPUs: a line is built in memory, then written under a
/// spin lock so lines never interleave.
enum Console {
    static let lock = Atomic<Bool>(false)

    static func write(_ line: String) {
        let data = VolatileMappedRegister<UInt32>(unsafeBitPattern: 0x0900_0000)
        while lock.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged == false {}
        for byte in line.utf8 { data.store(UInt32(byte)) }
        data.store(10)
        lock.store(false, ordering: .releasing)
    }
}

/// `0x…` hexadecimal.
func hex(_ value: UInt64) -> String {
    let digits: StaticString = "0123456789abcdef"
    var text = ""
    var shift = 60
    var started = false
    while shift >= 0 {
        let nibble = Int(value >> UInt64(shift) & 0xF)
        if nibble != 0 || started || shift == 0 {
            started = true
            text.append(Character(Unicode.Scalar(digits.utf8Start[nibble])))
        }
        shift -= 4
    }
    return "0x" + text
}
