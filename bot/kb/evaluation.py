"""Knowledge-base evaluation: recall@1/@3 and MRR on answerable questions, and no-answer precision and
recall at the answer threshold, per language; plus the threshold that would be best on this set."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bot.errors import DataError
from bot.kb.answer import answer_confidence
from bot.kb.config import AnswerConfig
from bot.kb.index import KBIndex
from bot.kb.search import search_index

THRESHOLDS = np.round(np.arange(0.0, 1.0, 0.01), 2)


@dataclass(frozen=True)
class Query:
    text: str
    lang: str
    answers: tuple[str, ...]
    line: int | None = None


@dataclass
class Outcome:
    query: Query
    rank: int | None  # 1-based rank of the first correct article, None when not in the top 10
    confidence: float  # answer confidence of the top hit (0 when there is none)
    search_ms: float


def load_queries(path: Path, index: KBIndex | None = None) -> list[Query]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(path, None, f"cannot read evaluation queries: {exc}") from exc
    items = raw.get("queries") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise DataError(path, None, "expected a top-level 'queries:' list")
    queries = []
    for i, item in enumerate(items, 1):
        if (
            not isinstance(item, dict)
            or not str(item.get("text", "")).strip()
            or item.get("lang") not in ("zh", "en")
        ):
            raise DataError(path, None, f"query {i} needs 'text', 'lang' (zh|en) and 'answers'")
        answers = tuple(item.get("answers") or ())
        if index is not None:
            missing = [a for a in answers if a not in index.by_id]
            if missing:
                raise DataError(
                    path, None, f"query {i} ({item['text']!r}) names unknown article(s) {missing}"
                )
        queries.append(Query(str(item["text"]), item["lang"], answers))
    return queries


def run_queries(
    index: KBIndex,
    queries: Sequence[Query],
    intent_of: Callable[[str], str | None] | None,
    config: AnswerConfig,
) -> list[Outcome]:
    outcomes = []
    for q in queries:
        intent = intent_of(q.text) if intent_of else None
        started = time.perf_counter()
        result = search_index(index, q.text, q.lang, top=10, intent=intent, snippets=False)
        elapsed = (time.perf_counter() - started) * 1000
        gold = set(q.answers)
        # The same article in the other language also answers the question.
        gold |= {index.articles[index.by_id[a]].translations or a for a in q.answers}
        rank = next((i for i, h in enumerate(result.hits, 1) if h.article.id in gold), None)
        confidence = answer_confidence(result.hits[0], intent, config) if result.hits else 0.0
        outcomes.append(Outcome(q, rank, confidence, elapsed))
    return outcomes


def _ratio(num: float, den: float) -> float:
    return round(num / den, 4) if den else 0.0


def score(outcomes: Sequence[Outcome], threshold: float) -> dict[str, Any]:
    answerable = [o for o in outcomes if o.query.answers]
    unanswerable = [o for o in outcomes if not o.query.answers]
    predicted_none = [o for o in outcomes if o.confidence < threshold]
    answered_right = [o for o in answerable if o.rank == 1 and o.confidence >= threshold]
    correct_decisions = len(answered_right) + sum(o.confidence < threshold for o in unanswerable)
    return {
        "n_answerable": len(answerable),
        "n_unanswerable": len(unanswerable),
        "recall_at_1": _ratio(sum(o.rank == 1 for o in answerable), len(answerable)),
        "recall_at_3": _ratio(sum(o.rank is not None and o.rank <= 3 for o in answerable), len(answerable)),
        "mrr": round(float(np.mean([1 / o.rank if o.rank else 0.0 for o in answerable])), 4)
        if answerable
        else 0.0,
        "no_answer_precision": _ratio(sum(not o.query.answers for o in predicted_none), len(predicted_none)),
        "no_answer_recall": _ratio(
            len([o for o in unanswerable if o.confidence < threshold]), len(unanswerable)
        ),
        "answered_correctly": _ratio(len(answered_right), len(answerable)),
        "decision_accuracy": _ratio(correct_decisions, len(outcomes)),
        "search_ms_p50": round(float(np.percentile([o.search_ms for o in outcomes], 50)), 3),
        "search_ms_p99": round(float(np.percentile([o.search_ms for o in outcomes], 99)), 3),
    }


def best_threshold(outcomes: Sequence[Outcome]) -> float:
    """The threshold with the most right decisions (answer right at rank 1, or decline the unanswerable)."""
    accuracy = [score(outcomes, float(t))["decision_accuracy"] for t in THRESHOLDS]
    return float(THRESHOLDS[int(np.argmax(accuracy))])


def evaluate(
    index: KBIndex,
    queries: Sequence[Query],
    intent_of: Callable[[str], str | None] | None,
    config: AnswerConfig,
) -> dict[str, Any]:
    outcomes = run_queries(index, queries, intent_of, config)
    report: dict[str, Any] = {
        "threshold": config.threshold,
        "best_threshold_on_this_set": best_threshold(outcomes),
        "uses_nlu_intent": intent_of is not None,
        "overall": score(outcomes, config.threshold),
        "by_language": {
            lang: score([o for o in outcomes if o.query.lang == lang], config.threshold)
            for lang in ("zh", "en")
            if any(o.query.lang == lang for o in outcomes)
        },
        "misses": [
            {"text": o.query.text, "lang": o.query.lang, "answers": list(o.query.answers), "rank": o.rank}
            for o in outcomes
            if o.query.answers and o.rank != 1
        ][:50],
    }
    return report
