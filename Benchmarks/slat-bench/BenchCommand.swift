/// What the command line asks `slat-bench` to do.
enum BenchCommand: Sendable {
    /// Measure (the default suite, or `run <workload>`).
    case run(RunOptions)
    /// `slat-bench tdp <workload>`: the x86 TDP MMU workloads.
    case tdp(TDPOptions)
    /// Name the workloads, metrics and formats (`list`).
    case list
    /// Print usage (`help`, `-h`, `--help`).
    case help

    /// The usage text.
    static let usage = """
        usage: slat-bench [options]                  run the default suite (every workload x every format)
               slat-bench run <workload> [options]   run one workload (or one metric, e.g. translate-random)
               slat-bench tdp <workload> [options]   x86 TDP MMU workloads: fault, dirty-log, zap, age (tdp help)
               slat-bench list                       name the workloads, metrics and formats
               slat-bench help

        options:
          --format <f>[,<f>...]  formats to run (repeatable; default: all): ept4 ept5 s2-4k s2-16k s2-64k
          --size <bytes>         guest-physical bytes to map, e.g. 1G, 512M, 64K (default 1G)
          --repeat <n>           timed repeats per metric (after one warm-up); reports median and min-max
                                 (default 5 on 4 KiB formats, 3 on 16/64 KiB)
          --threads <n>          only 1 (multi-threaded workloads arrive with SLATSim)
          --json                 one JSON object per result line instead of the table
          --quiet                no progress lines on stderr

        Build with -c release; figures from a debug build are meaningless.
        """
}
