"""The knowledge base searched from several threads (the app's CPU pool) while it rebuilds itself."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bot.kb.search import KnowledgeBase, search_index
from tests.conftest import KB_DIR
from tests.kb.conftest import write_article

QUERY = "月球基地报销"


def ids(kb_result: object) -> tuple[str, ...]:
    return tuple(h.article.id for h in kb_result.hits)  # type: ignore[attr-defined]


def test_searches_during_a_rebuild_see_the_old_or_the_new_index(
    tmp_path: Path, nlu_data_tables: tuple[dict[str, str], list[str]]
) -> None:
    synonyms, intents = nlu_data_tables
    articles = tmp_path / "articles"
    shutil.copytree(KB_DIR / "articles", articles)
    kb = KnowledgeBase(
        articles, tmp_path / "index", KB_DIR / "config.yml", synonyms, intents, check_interval=0
    )
    old_index = kb.index
    old = ids(search_index(old_index, QUERY))
    results: list[tuple[tuple[str, ...], bool]] = []  # list.append is atomic across threads
    stop = threading.Event()

    def keep_searching() -> None:
        while not stop.is_set():
            # Every search also checks the files (check_interval=0), so the workers race the rebuild too.
            results.append((ids(kb.search(QUERY)), kb.article("zh-moon-base") is not None))

    def wait_for(predicate: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 60
        while not predicate():
            assert time.monotonic() < deadline and not any(w.done() for w in workers)
            time.sleep(0.01)

    with ThreadPoolExecutor(4) as pool:
        workers = [pool.submit(keep_searching) for _ in range(4)]
        try:
            wait_for(lambda: len(results) >= 4)
            write_article(
                articles, "zh", "moon-base", "月球基地差旅报销", "月球基地出差的报销流程", tags="月球基地"
            )
            kb.reload_if_changed(force_check=True)  # waits its turn if a worker is rebuilding already
            wait_for(lambda: kb.index is not old_index)
            new = ids(search_index(kb.index, QUERY))
            wait_for(lambda: sum(hits == new for hits, _ in results) >= 8)
        finally:
            stop.set()
        for worker in workers:
            worker.result()  # re-raises anything a search raised

    assert new[0] == "zh-moon-base" and old != new
    assert {hits for hits, _ in results} == {old, new}  # nothing else: never a mixture
    assert (new, False) not in results  # a search on the new index, then the article from the old one


def test_a_search_does_not_wait_for_a_rebuild_in_another_thread(
    tmp_path: Path, nlu_data_tables: tuple[dict[str, str], list[str]]
) -> None:
    synonyms, intents = nlu_data_tables
    articles = tmp_path / "articles"
    shutil.copytree(KB_DIR / "articles", articles)
    kb = KnowledgeBase(
        articles, tmp_path / "index", KB_DIR / "config.yml", synonyms, intents, check_interval=0
    )
    old = ids(kb.search(QUERY))
    write_article(articles, "zh", "moon-base", "月球基地差旅报销", "月球基地出差的报销流程", tags="月球基地")
    with ThreadPoolExecutor(1) as pool, kb._lock:  # as if another thread were rebuilding
        during = pool.submit(kb.search, QUERY).result(timeout=60)  # before: blocked until the rebuild ended
    assert ids(during) == old
    assert kb.reload_if_changed(force_check=True)
    assert ids(kb.search(QUERY))[0] == "zh-moon-base"
