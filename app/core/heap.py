"""The cyclic garbage collector's settings for a long-running process.

Measured under the bench's filing load (bench/README.md): with CPython's
defaults the collector took about a tenth of an app worker's CPU and a fifth
of ``ydt worker``'s, and each full collection stopped a process for up to a
third of a second, walking every object the process holds, almost all of
which came with start-up (modules, the app's routes, models and schemas) and
is never garbage. A filing that arrived then waited for it: the filing's p99
was about that pause.

``settle`` is called once a process is ready to serve: what exists then is
moved out of the collector's sight (``gc.freeze``), so a full collection
walks only what was made since, and young collections run less often,
since almost everything a request makes is freed by reference counting
before any collection could see it.
"""

from __future__ import annotations

import gc

# CPython's defaults are (700, 10, 10).
THRESHOLDS = (20_000, 20, 10)


def settle() -> None:
    """Collect once, freeze what is left, and set the thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
