// SLATSplitTests: being written.
