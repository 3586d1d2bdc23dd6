"""The garbage collector in a long-lived process (a web process, a worker).

Python's cyclic collector scans, at every collection of its oldest generation, every object
the process holds: in a web process, some hundreds of thousands loaded at start (modules,
Django's settings, URL patterns, model metadata) that live as long as it does. Under load
such a collection came every few hundred requests. `settle()`, once the process has loaded
what it serves with, moves what exists then out of the collector's sight (`gc.freeze`):
collections look only at what came later. Garbage made afterwards is collected as before.

(A larger youngest generation, e.g. 20,000 allocations instead of 700, saved about 5% more
of a read's CPU but raised the web process's peak memory at 1,000 readers by about 60%: not
taken.)
"""

from __future__ import annotations

import gc


def settle() -> None:
    gc.collect()
    gc.freeze()
