/// Uniformly random among the enabled threads at every decision, from a
/// seed (plain random testing of schedules).
public final class RandomSchedulingPolicy: SchedulingPolicy {
    var random: SimulationRandom

    /// A policy drawing from `seed`.
    public init(seed: UInt64) { random = SimulationRandom(seed: seed) }

    /// A uniformly random enabled thread.
    public func choose(_ decision: SchedulingDecision) -> Int {
        decision.enabled[random.below(decision.enabled.count)]
    }
}
