"""Knowledge-base benchmarks: evaluation on kb_index/eval/queries.yml, and index scale (10,000 and
100,000 synthetic articles made from the real ones) for both BM25 backends.

``python -m benchmarks.kb eval`` · ``python -m benchmarks.kb scale`` (runs each size/backend in its own
process so that peak memory is that run's alone).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from dataclasses import replace

from benchmarks.common import ROOT, peak_rss_mib, percentiles, write_result
from bot.kb.articles import Article, load_articles
from bot.kb.config import KBConfig
from bot.kb.evaluation import evaluate, load_queries
from bot.kb.index import KBIndex, analyse, load_or_build
from bot.kb.search import search_index
from bot.nlu.pipeline import NLUPipeline
from bot.nlu.training_data import load_training_data

KB_DIR = ROOT / "kb_index"
DATA_DIR = ROOT / "nlu_data"
SIZES = (10_000, 100_000)


def _tables() -> tuple[dict[str, str], list[str]]:
    data = load_training_data(DATA_DIR)
    return data.synonyms, data.intents


def kb_eval() -> None:
    synonyms, intents = _tables()
    config = KBConfig.from_file(KB_DIR / "config.yml")
    index, _ = load_or_build(KB_DIR / "articles", ROOT / "models" / "kb", config, synonyms, intents)
    nlu, _ = NLUPipeline.load_or_train(DATA_DIR, ROOT / "models" / "nlu")
    queries = load_queries(KB_DIR / "eval" / "queries.yml", index)
    with_intent = evaluate(index, queries, lambda t: str(nlu.parse(t)["intent"]["name"]), config.answer)
    without_intent = evaluate(index, queries, None, config.answer)
    write_result(
        "kb_eval",
        {
            "articles": len(index.articles),
            "queries": len(queries),
            "config": config.model_dump(),
            **with_intent,
            "without_intent": {
                "overall": without_intent["overall"],
                "by_language": without_intent["by_language"],
            },
        },
    )


def synthetic(articles: list[Article], n: int, seed: int = 0) -> list[Article]:
    """``n`` articles made from the real ones: each keeps a real article's fields and mixes in lines from
    other articles of its language, so the vocabulary and lengths stay realistic."""
    rng = random.Random(seed)
    by_lang: dict[str, list[str]] = {}
    for a in articles:
        by_lang.setdefault(a.lang, []).extend(line for line in a.body.splitlines() if line.strip())
    out = []
    for i in range(n):
        base = articles[i % len(articles)]
        lines = base.body.splitlines()
        extra = rng.sample(by_lang[base.lang], k=min(4, len(by_lang[base.lang])))
        body = "\n".join(lines[: max(3, len(lines) // 2)] + extra)
        out.append(
            replace(
                base,
                id=f"{base.lang}-syn-{i}",
                title=f"{base.title} #{i}",
                body=body,
                translations=None,
                sections={},
            )
        )
    return out


def scale_one(size: int, backend: str) -> dict:
    synonyms, _ = _tables()
    articles = synthetic(load_articles(KB_DIR / "articles"), size)
    config = KBConfig.from_file(KB_DIR / "config.yml").model_copy(
        update={"bm25": KBConfig().bm25.model_copy(update={"backend": backend})}
    )
    started = time.perf_counter()
    docs = analyse(
        articles, config, synonyms, progress=lambda s: print(f"  {s}", file=sys.stderr, flush=True)
    )
    analyse_s = time.perf_counter() - started
    started = time.perf_counter()
    index = KBIndex.build(articles, config, synonyms, docs=docs)
    matrix_s = time.perf_counter() - started
    queries = [q.text for q in load_queries(KB_DIR / "eval" / "queries.yml")]
    for q in queries[:50]:
        search_index(index, q)
    latencies, ranking_only = [], []
    for q in queries:
        started = time.perf_counter()
        search_index(index, q, top=5)
        latencies.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        search_index(index, q, top=5, snippets=False)
        ranking_only.append((time.perf_counter() - started) * 1000)
    return {
        "articles": size,
        "backend": backend,
        "analyse_seconds": round(analyse_s, 2),
        "bm25_build_seconds": round(matrix_s, 3),
        "peak_rss_mib": peak_rss_mib(),
        "search_ms": percentiles(latencies),
        "search_ms_without_snippets": percentiles(ranking_only),
        "queries": len(queries),
    }


def scale() -> None:
    runs = []
    for size in SIZES:
        for backend in ("sparse", "bm25s"):
            print(f"kb scale: {size:,} articles, {backend}", file=sys.stderr, flush=True)
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.kb", "scale-one", str(size), backend],
                cwd=ROOT,
                check=True,
                capture_output=True,
                text=True,
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    write_result(
        "kb_scale",
        {
            "runs": runs,
            "note": "synthetic articles generated from the real ones; "
            "search = one query at a time, top 5, with snippets unless stated",
        },
    )


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "all"
    if command == "scale-one":
        print(json.dumps(scale_one(int(sys.argv[2]), sys.argv[3])))
    elif command == "eval":
        kb_eval()
    elif command == "scale":
        scale()
    elif command == "all":
        kb_eval()
        scale()
    else:
        sys.exit(f"unknown command {command!r}\nusage: python -m benchmarks.kb [eval | scale | all]")
