import SLAT
import SLATx86

/// Options of `slat-bench tdp <workload>`: the x86 TDP MMU workloads on EPT
/// (4-level, A/D flags on), 4 KiB host pages unless said otherwise.
struct TDPOptions: Sendable {
    /// The workload: fault, dirty-log, zap or age.
    var workload: TDPWorkload = .fault
    /// Guest bytes (default 1 GiB).
    var size: UInt64 = 1 << 30
    /// Timed repeats (after one warm-up).
    var repeats = 5
    /// Faulting threads (fault workload).
    var threads = 1
    /// Faults take the MMU lock exclusively (baseline).
    var exclusiveLock = false
    /// Dirty-log mode (dirty-log workload).
    var dirtyMode: DirtyLogMode = .writeProtect

    static let usage = """
        usage: slat-bench tdp <workload> [options]     x86 TDP MMU workloads on EPT (4-level, A/D on)
          workloads: fault      demand-fault the range in 4 KiB pages through the full fault path
                     dirty-log  2 MiB-backed range: populate, enable, one write pass, get+clear, disable (ms per phase)
                     zap        notifier-style zap of a populated 4 KiB mapping (ns per page)
                     age        clear-young then test-young over a populated 4 KiB mapping (ns per page)
                     eager-split  SLATSplit vs fault-time splitting, EPT and stage-2 4K, 2M and 1G leaves
          --threads <n>         faulting threads, each its own part of the range (fault; default 1)
          --lock shared|exclusive  how faults take the MMU lock (fault; default shared)
          --dirty-mode wp|dbit  write-protect or dirty-bit logging (dirty-log; default wp)
          --size <bytes>        default 1G; --repeat <n> default 5
        """

    static func parse(_ arguments: [String]) throws(BenchFailure) -> TDPOptions {
        var options = TDPOptions()
        guard let name = arguments.first, let workload = TDPWorkload(rawValue: name) else {
            throw .usage("tdp needs a workload: \(TDPWorkload.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        options.workload = workload
        var index = 1
        func value() throws(BenchFailure) -> String {
            index += 1
            guard index < arguments.count else { throw .usage("\(arguments[index - 1]) needs a value") }
            return arguments[index]
        }
        while index < arguments.count {
            switch arguments[index] {
            case "--threads", "-t":
                guard let threads = Int(try value()), threads > 0, threads <= 64 else { throw .usage("bad --threads") }
                options.threads = threads
            case "--lock":
                switch try value() {
                case "shared": options.exclusiveLock = false
                case "exclusive": options.exclusiveLock = true
                default: throw .usage("--lock takes shared or exclusive")
                }
            case "--dirty-mode":
                switch try value() {
                case "wp": options.dirtyMode = .writeProtect
                case "dbit": options.dirtyMode = .dirtyBit
                default: throw .usage("--dirty-mode takes wp or dbit")
                }
            case "--size", "-s":
                let text = try value()
                guard let size = ByteSize.parse(text), size >= 1 << 21, size % (1 << 21) == 0 else {
                    throw .usage("bad --size '\(text)': a multiple of 2M")
                }
                options.size = size
            case "--repeat", "--repeats", "-r":
                guard let repeats = Int(try value()), repeats > 0, repeats <= 1000 else { throw .usage("bad --repeat") }
                options.repeats = repeats
            default:
                throw .usage("unknown tdp option '\(arguments[index])'")
            }
            index += 1
        }
        return options
    }
}

/// The TDP MMU workloads.
enum TDPWorkload: String, CaseIterable, Sendable {
    case fault
    case dirtyLog = "dirty-log"
    case zap
    case age
    case eagerSplit = "eager-split"
}
