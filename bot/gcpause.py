"""The garbage collector in a long-lived server: start-up objects frozen, every pause measured.

CPython's cyclic collector stops the event loop for as long as a collection takes, and a full (generation 2)
collection walks every tracked object in the process. What a process loads at start — the intent model, the
jieba dictionary, the knowledge-base index, the sentence encoder's vocabulary: about 240,000 objects — lives
as long as the process and can never be garbage, yet each full collection walked it again: 150 ms measured
with nothing else in the heap, on top of whatever the open sockets add. Under load that pause was the reply
p99 (docs/benchmarks.md, the load figures).

:func:`freeze_startup` collects once and moves everything alive into the permanent generation
(:func:`gc.freeze`, the technique CPython documents for pre-fork servers), so later collections walk only
what was created since. :class:`GcWatch` times every collection into ``triage_gc_pause_seconds`` by
generation and logs a pause long enough to be felt.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from prometheus_client import Histogram

logger = logging.getLogger(__name__)

FELT_S = 0.05  # a pause this long shows in reply latencies: logged


def freeze_startup() -> int:
    """Collect what start-up left behind, then freeze everything alive; returns the objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def tune(thresholds: str) -> tuple[int, int, int]:
    """Set the collector's thresholds from ``"young,middle,full"``; returns the previous ones."""
    previous = gc.get_threshold()
    young, middle, full = (int(x) for x in thresholds.split(","))
    gc.set_threshold(young, middle, full)
    return previous


class GcWatch:
    """A ``gc.callbacks`` entry timing each collection into ``histogram`` (labelled by generation)."""

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        seconds = time.perf_counter() - self._started
        generation = info.get("generation", 0)
        self.histogram.labels(str(generation)).observe(seconds)
        if seconds >= FELT_S:
            logger.info(
                "garbage collection (generation %s) paused the process %.0f ms; %d objects freed",
                generation,
                seconds * 1000,
                info.get("collected", 0),
            )

    def install(self) -> None:
        gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)
