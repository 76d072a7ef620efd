// The umbrella: `import SLAT` gives a VMM everything it links against —
// the core, both backends, the eager split engine, the pfn cache and the
// simulated hardware its tests run on.
@_exported import SLATCore
@_exported import SLATx86
@_exported import SLATArm64
@_exported import SLATSplit
@_exported import SLATPfnCache
@_exported import SLATSim
