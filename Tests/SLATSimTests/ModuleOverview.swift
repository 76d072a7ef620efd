// SLATSimTests: being written.
