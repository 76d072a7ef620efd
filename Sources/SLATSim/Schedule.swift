/// A schedule as runs of steps: thread `thread` took `steps` steps, then
/// the next run's thread. It replays an execution exactly, and its text
/// form (`"0x12 1x3 0x40"`) is what a failing exploration prints.
public struct Schedule: Sendable, Hashable, CustomStringConvertible {
    /// One run of consecutive steps of one thread.
    public struct Run: Sendable, Hashable {
        /// The thread.
        public var thread: Int
        /// How many consecutive steps it took (at least 1).
        public var steps: Int

        /// A run of `steps` steps of `thread`.
        public init(thread: Int, steps: Int) {
            self.thread = thread
            self.steps = steps
        }
    }

    /// The runs in order.
    public var runs: [Run]

    /// A schedule of `runs`.
    public init(runs: [Run]) { self.runs = runs }

    /// The schedule that made the choices `choices` (one thread per decision).
    public init(choices: [Int]) {
        var runs: [Run] = []
        for thread in choices {
            if let last = runs.last, last.thread == thread {
                runs[runs.count - 1].steps += 1
            } else {
                runs.append(Run(thread: thread, steps: 1))
            }
        }
        self.runs = runs
    }

    /// Parses the text form (`"0x12 1x3"`; a bare `"2"` is one step);
    /// `nil` when it is not one.
    public init?(_ text: String) {
        var runs: [Run] = []
        for token in text.split(whereSeparator: { $0 == " " || $0 == "," }) {
            let parts = token.split(separator: "x", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), let thread = Int(parts[0]), thread >= 0 else { return nil }
            let steps = parts.count == 2 ? Int(parts[1]) : 1
            guard let steps, steps > 0 else { return nil }
            runs.append(Run(thread: thread, steps: steps))
        }
        self.runs = runs
    }

    /// Context switches: one fewer than the runs.
    public var switches: Int { max(0, runs.count - 1) }

    /// Total steps.
    public var steps: Int { runs.reduce(0) { $0 + $1.steps } }

    /// The text form, parsed back by ``init(_:)``.
    public var description: String {
        runs.map { "\($0.thread)x\($0.steps)" }.joined(separator: " ")
    }
}
