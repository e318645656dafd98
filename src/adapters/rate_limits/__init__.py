"""Rate limit state: GCRA's one theoretical arrival time per policy and key.

:mod:`~adapters.rate_limits.gcra` is the arithmetic, once; two stores keep its state:
:class:`~adapters.rate_limits.memory.MemoryArrivals` in this process (a single
process: no I/O) and :class:`~adapters.rate_limits.sqlite.SqliteArrivals` in a SQLite
file that every worker process of one container shares. The HTTP side
(``entrypoints.http.rate_limiter``) chooses one.
"""
