#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How busy the machine is: online CPUs and the 1-minute load average
/// (Linux `/proc/loadavg`). On a small shared machine other work inflates
/// wall-clock figures, so reports state the load they were taken under.
struct SystemLoad: Sendable {
    /// Online CPUs.
    let cpus: Int
    /// The 1-minute load average, or `nil` where it cannot be read.
    let oneMinute: Double?

    /// The load now.
    static func current() -> SystemLoad {
        SystemLoad(cpus: max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))), oneMinute: readLoadAverage())
    }

    /// Whether runnable work already fills every CPU, so the benchmark
    /// thread likely shares one and its wall-clock figures are inflated.
    var isSaturated: Bool { (oneMinute ?? 0) >= Double(cpus) }

    /// `2 CPUs, load average 0.35`.
    var description: String {
        let load = oneMinute.map { DecimalText.fixed($0, 2) } ?? "unknown"
        return "\(cpus) CPU\(cpus == 1 ? "" : "s"), load average \(load)"
    }

    private static func readLoadAverage() -> Double? {
        let descriptor = open("/proc/loadavg", O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self)
        return text.split(separator: " ").first.flatMap { Double($0) }
    }
}
