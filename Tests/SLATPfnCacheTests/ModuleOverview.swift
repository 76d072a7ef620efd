// SLATPfnCacheTests: being written.
