/// Follows a ``Schedule``: each run's thread takes its steps while it is
/// enabled; a run whose thread is not enabled is cut short. After the
/// schedule (or when it no longer fits, as after shrinking), the
/// non-preemptive choice. Replaying a recorded schedule on the same
/// scenario reproduces the execution exactly.
public final class ReplayPolicy: SchedulingPolicy {
    let schedule: Schedule
    var run = 0
    var taken = 0

    /// A policy that replays `schedule`.
    public init(_ schedule: Schedule) { self.schedule = schedule }

    /// The current run's thread while it is enabled and has steps left, else
    /// the next run's; past the schedule, the non-preemptive choice.
    public func choose(_ decision: SchedulingDecision) -> Int {
        while run < schedule.runs.count {
            let current = schedule.runs[run]
            if taken < current.steps && decision.enabled.contains(current.thread) {
                taken += 1
                return current.thread
            }
            run += 1
            taken = 0
        }
        return decision.nonPreemptiveChoice
    }
}
