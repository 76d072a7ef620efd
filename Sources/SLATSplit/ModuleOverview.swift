// SLATSplit: the eager page-split engine for dirty logging, generic over both backends. Being written under issue 6.
