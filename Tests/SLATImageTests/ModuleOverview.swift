// SLATImageTests: being written.
