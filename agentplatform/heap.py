"""The garbage collector in a long-lived process (a web process, a worker).

Python's cyclic collector scans, at every collection of its oldest generation, every object
the process holds: in a web process, some hundreds of thousands loaded at start (modules,
Django's settings, URL patterns, model metadata) that live as long as it does, and under
load, thousands of connections and requests in flight. `settle()`, once the process has
loaded what it serves with, moves what exists then out of the collector's sight
(`gc.freeze`), and lets the youngest generation grow to YOUNGEST_THRESHOLD allocations
before it is collected instead of 700: collections come far less often.

That costs no memory because a request leaves nothing for the collector: what it makes is
freed when its response is sent (the handler and the API views break the reference cycles
Django, DRF and asyncio make), which a test holds. Measured on the reads benchmark (one web
process, bench/RESULTS.md): with 10,000 readers, 30% more reads per second and half the
clients left without an answer; with 1,000, the same peak memory.
"""

from __future__ import annotations

import gc

YOUNGEST_THRESHOLD = 20_000


def settle() -> None:
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNGEST_THRESHOLD, middle, oldest)
