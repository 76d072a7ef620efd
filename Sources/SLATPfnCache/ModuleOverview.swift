// SLATPfnCache: the gfn→pfn cache invalidated by mmu-notifier events. Being written under issue 7.
