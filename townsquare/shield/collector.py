"""The garbage collector's pace while a worker is flooded.

A flood keeps thousands of connections alive on a worker (held without a parser, trickling a
head, refused a second later), each a protocol object, its timers and buffers, and leaves the
cycles of thousands more behind it every second. CPython's collector then ran a full pass over
all of them every 100 young collections (every 70,000 container allocations: one to three
seconds under all the floods at once), and each pass held the worker's event loop for 60-730
ms, every request on the worker waiting, signed-in people's included. Young collections ten
times rarer make full passes ten times rarer; what a young collection costs grows with the
objects it walks, not with how rarely it runs, and a few thousand more short-lived objects
wait a little longer to be freed.
"""

from __future__ import annotations

import gc

# Container allocations (net) between two young collections; CPython's default is 700.
YOUNG_THRESHOLD = 7_000


def pace_collector() -> None:
    """Make this process's young collections (and so its full ones) ten times rarer."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(YOUNG_THRESHOLD, young), middle, old)
