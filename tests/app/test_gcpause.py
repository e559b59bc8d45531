"""The garbage collector's pauses measured, and start-up objects kept out of its full passes."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Histogram

from bot.gcpause import GcWatch
from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from triagebot.app import create_app


def _count(histogram: Histogram, generation: str) -> float:
    for metric in histogram.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels.get("generation") == generation:
                return sample.value
    return 0.0


def test_every_collection_is_timed_by_generation_until_removed() -> None:
    histogram = Histogram("pause", "", ["generation"], registry=CollectorRegistry())
    watch = GcWatch(histogram)
    watch.install()
    try:
        gc.collect(2)
        gc.collect(0)
    finally:
        watch.remove()
    assert _count(histogram, "2") >= 1 and _count(histogram, "0") >= 1
    before = _count(histogram, "2")
    gc.collect(2)
    assert _count(histogram, "2") == before  # removed: nothing more observed
    watch.remove()  # twice is harmless


def test_frozen_start_up_objects_are_not_walked_by_later_full_collections() -> None:
    """In a fresh interpreter (freezing is process-wide): what exists at freeze time leaves the collector's
    generations, so a full collection walks only what came after."""
    script = textwrap.dedent(
        """
        import gc
        from bot.gcpause import freeze_startup
        model = [[i] for i in range(200_000)]  # what start-up loads: long-lived, tracked
        before = len(gc.get_objects())
        frozen = freeze_startup()
        after = len(gc.get_objects())
        later = [[i] for i in range(1_000)]
        print(before, frozen, after, len(gc.get_objects()))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    before, frozen, after, later = map(int, out.split())
    assert before > 200_000 and frozen >= 200_000
    assert after < 1_000  # nothing left for a full pass to walk
    assert 1_000 <= later < 2_000


def test_the_app_freezes_what_start_up_loaded_and_exports_its_pauses(
    settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase
) -> None:
    gc.unfreeze()
    try:
        app = create_app(settings.model_copy(update={"gc_freeze": True}), nlu=nlu, kb=knowledge_base)
        with TestClient(app) as client:
            assert gc.get_freeze_count() > 100_000  # the intent model, the KB index, the encoder's vocabulary
            gc.collect()
            metrics = client.get("/metrics").text
        assert 'triage_gc_pause_seconds_count{generation="2"}' in metrics
    finally:
        gc.unfreeze()  # the rest of the test session's heap is collected as before
