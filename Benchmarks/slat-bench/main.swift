#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// slat-bench: SLAT's benchmark. See SlatBench, BenchCommand.usage and
// Docs/benchmarks.md.
exit(SlatBench.main(Array(CommandLine.arguments.dropFirst())))
