"""Score the recorded turns: accuracy overall, per script, per expected decision (with the confusion
matrix), intent and severity accuracy where labelled, per tag, and the list of misses."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from bot.dialogue.runner import TurnResult
from bot.dialogue.sets import DECISIONS, SCRIPTS


def score_set(results: list[TurnResult]) -> dict[str, Any]:
    """The report of one set (a JSON-ready dict)."""
    by_conv: dict[str, list[TurnResult]] = defaultdict(list)
    for r in results:
        by_conv[r.conversation.id].append(r)
    confusion: dict[str, Counter[str]] = {d: Counter() for d in DECISIONS}
    for r in results:
        confusion[r.expected][r.outcome.decision] += 1
    observed = Counter(r.outcome.decision for r in results)
    by_expected = {}
    for decision in DECISIONS:
        row = confusion[decision]
        total, right = sum(row.values()), row[decision]
        if total or observed[decision]:
            by_expected[decision] = {
                "turns": total,
                "correct": right,
                "recall": _ratio(right, total),
                "precision": _ratio(right, observed[decision]),
            }
    return {
        "conversations": len(by_conv),
        "turns": len(results),
        "correct": sum(r.decision_ok for r in results),
        "accuracy": _ratio(sum(r.decision_ok for r in results), len(results)),
        "conversation_accuracy": _ratio(
            sum(all(t.decision_ok for t in turns) for turns in by_conv.values()), len(by_conv)
        ),
        "by_script": {
            script: _share([r for r in results if r.conversation.script == script], lambda r: r.decision_ok)
            for script in SCRIPTS
            if any(r.conversation.script == script for r in results)
        },
        "by_expected": by_expected,
        "confusion": {d: dict(row) for d, row in confusion.items() if row},
        "intent": _share([r for r in results if r.intent_ok is not None], lambda r: bool(r.intent_ok)),
        "severity": _share([r for r in results if r.severity_ok is not None], lambda r: bool(r.severity_ok)),
        "by_tag": {
            tag: _share([r for r in results if tag in r.conversation.tags], lambda r: r.decision_ok)
            for tag in sorted({t for r in results for t in r.conversation.tags})
        },
        "misses": [_miss(r) for r in results if _wrong(r)],
    }


def _share(items: Iterable[TurnResult], ok: Callable[[TurnResult], bool]) -> dict[str, Any]:
    """How many turns were scored, how many were right, and the percentage."""
    scored = list(items)
    right = sum(1 for r in scored if ok(r))
    return {"turns": len(scored), "correct": right, "accuracy": _ratio(right, len(scored))}


def _wrong(r: TurnResult) -> list[str]:
    return [
        name
        for name, ok in (("decision", r.decision_ok), ("intent", r.intent_ok), ("severity", r.severity_ok))
        if ok is False
    ]


def _miss(r: TurnResult) -> dict[str, Any]:
    return {
        "id": r.conversation.id,
        "turn": r.index + 1,
        "line": r.turn.line,
        "script": r.conversation.script,
        "text": r.turn.say,
        "wrong": _wrong(r),
        "expected": "|".join(r.turn.accepted),
        "observed": r.outcome.decision,
        "expected_intent": list(r.turn.intents),
        "observed_intent": r.outcome.intent,
        "expected_severity": r.turn.severity,
        "observed_severity": r.outcome.severity,
        "engine": r.outcome.engine_decision,
        "reply": r.outcome.reply,
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None
