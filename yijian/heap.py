"""The garbage collector's settings for a service process that has finished starting.

After start-up most of a service's heap never dies: modules, classes, SQLAlchemy's tables
and compiled statements, pydantic's validators, about 180,000 objects in ``yijian serve
intake``. CPython's full collection walks every one of them. Under load it ran about once a
second and took 100–130 ms each time, and every request in flight waited: those pauses were
intake's p99 at a steady 1,000 requests a second, and 8–10% of its CPU (docs/performance.md,
change 33).

``gc.freeze()`` moves what exists once start-up is done out of the collector's sight: it
is the use the Python documentation gives for it. A larger first generation means fewer
young collections, so fewer of a request's short-lived objects are still alive when one
runs and get promoted towards the full collection. Reference counting still frees whatever
is not in a cycle at once, and cycles are still collected, only less often: at most
``YOUNG_GENERATION`` container objects wait, a few megabytes.

Only the long-running processes call this (``yijian run``, ``yijian serve``): a test that
builds apps again and again in one process would keep each one's start-up objects forever.
"""

from __future__ import annotations

import gc

# CPython's default is 700 allocations. With the freeze, intake alone on SQLite, two pairs:
# 3,600–3,900 young collections in the load at 700 and almost none at 10,000 (50,000 the
# same), 1,290–1,470 against 1,470–1,610 requests a second.
YOUNG_GENERATION = 10_000


def settle() -> None:
    """Collect what start-up left behind, freeze the rest, and collect the young less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION, middle, old)
