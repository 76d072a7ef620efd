// SLATSim: simulated hardware (per-vCPU TLBs, hardware walker, vCPU threads, reference model). Being written under issue 3.
