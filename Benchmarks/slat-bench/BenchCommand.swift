/// What the command line asks `slat-bench` to do.
enum BenchCommand: Sendable {
    /// Measure (the default suite, or `run <workload>`).
    case run(RunOptions)
    /// Name the workloads, metrics and formats (`list`).
    case list
    /// Print usage (`help`, `-h`, `--help`).
    case help

    /// The usage text.
    static let usage = """
        usage: slat-bench [options]                  run the default suite (every workload x every format)
               slat-bench run <workload>[,...] [options]  run workloads or metrics (e.g. translate-random,zap)
               slat-bench list                       name the workloads, metrics and formats
               slat-bench help

        options:
          --format <f>[,<f>...]  formats to run (repeatable; default: all): ept4 ept5 ept4-ad s2-4k s2-16k s2-64k
          --size <bytes>         guest-physical bytes to map, e.g. 1G, 512M, 64K (default 1G)
          --repeat <n>           timed repeats per metric (after one warm-up); reports median and min-max
                                 (default 5 on 4 KiB formats, 3 on 16/64 KiB)
          --threads <n>          vCPU threads of the multi-threaded metrics (fault-threads, ...; default 2);
                                 their one-thread figure is always measured too
          --rounds <n>           rounds that time both sides of each stage-2 ratio target in turns, after
                                 the main pass; the verdict judges the ratio of their fastest repeats
                                 (default 9; 0 judges the main pass's medians, measured apart)
          --dirty-mode wp|dbit   EPT dirty logging by write protection or dirty bits (default: dbit on
                                 ept4-ad, wp otherwise)
          --json                 one JSON object per result line instead of the table
          --quiet                no progress lines on stderr

        Build with -c release; figures from a debug build are meaningless.
        """
}
