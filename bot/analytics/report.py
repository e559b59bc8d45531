"""A period of the rollup read back: the numbers of the analytics page and ``GET /api/v1/analytics``.

Every process reads the same Redis structures, so every process serves the same numbers. A period is whole
days in the deployment's time zone; ``channel`` and ``language`` narrow every figure."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.errors import InputError
from bot.store.keys import Keys
from bot.vocabulary import Severity

MAX_DAYS = 366
EARLIEST, LATEST = dt.date(2000, 1, 1), dt.date(2100, 12, 31)
TOP = 10


@dataclass(frozen=True)
class Period:
    since: dt.date
    until: dt.date

    def __post_init__(self) -> None:
        for day in (self.since, self.until):
            if not EARLIEST <= day <= LATEST:
                raise InputError(f"{day} is outside {EARLIEST}..{LATEST}")
        if self.since > self.until:
            raise InputError(f"since ({self.since}) is after until ({self.until})")
        if (self.until - self.since).days >= MAX_DAYS:
            raise InputError(f"a period is at most {MAX_DAYS} days")

    @classmethod
    def last(cls, days: int, today: dt.date) -> Period:
        return cls(today - dt.timedelta(days=days - 1), today)

    def days(self) -> list[str]:
        count = (self.until - self.since).days + 1
        return [(self.since + dt.timedelta(days=i)).isoformat() for i in range(count)]


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank percentile (p in 0..100) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _times(samples: Iterable[dict[str, Any]]) -> dict[str, Any]:
    samples = list(samples)
    breaches = [s for s in samples if s["t"] and s["s"] > s["t"]]
    out: dict[str, Any] = {
        "count": len(samples),
        "p50_seconds": percentile([s["s"] for s in samples], 50),
        "p90_seconds": percentile([s["s"] for s in samples], 90),
        "within_sla": len(samples) - len(breaches),
        "breaches": len(breaches),
    }
    return out


async def report(
    redis: Any, keys: Keys, period: Period, channel: str | None = None, language: str | None = None
) -> dict[str, Any]:
    """The period's numbers (conversations counted on the day of their first message)."""
    days = period.days()
    async with redis.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.hgetall(keys.analytics_day(day))
            pipe.lrange(keys.analytics_times(day), 0, -1)
            pipe.zrange(keys.analytics_fallbacks(day), 0, -1, withscores=True)
        rows = await pipe.execute()

    def wanted(ch: str, lang: str) -> bool:
        return (channel is None or ch == channel) and (language is None or lang == language)

    totals: Counter[str] = Counter()
    by: dict[str, dict[str, Counter[str]]] = {"channel": {}, "language": {}}
    reasons: Counter[str] = Counter()
    severities: Counter[str] = Counter()
    intents: Counter[str] = Counter()
    csat: Counter[str] = Counter()
    fallbacks: Counter[str] = Counter()
    samples: list[dict[str, Any]] = []
    daily = []
    for i, day in enumerate(days):
        counters, times, fallen = rows[3 * i], rows[3 * i + 1], rows[3 * i + 2]
        today: Counter[str] = Counter()
        for field, value in counters.items():
            metric, ch, lang, *rest = field.split("|")
            if not wanted(ch, lang):
                continue
            n = int(value)
            if metric == "intent":
                intents[rest[0]] += n
            elif metric == "csat":
                csat[rest[0]] += n
            elif metric == "handoff":
                reasons[rest[0]] += n
                severities[rest[1]] += n
                totals["handoffs"] += n
            else:
                today[metric] += n
                by["channel"].setdefault(ch, Counter())[metric] += n
                by["language"].setdefault(lang, Counter())[metric] += n
        totals.update(today)
        samples += [s for s in map(json.loads, times) if wanted(s["ch"], s["lang"])]
        for member, score in fallen:
            ch, lang, text = member.split("|", 2)
            if wanted(ch, lang):
                fallbacks[text] += int(score)
        daily.append(
            {
                "day": day,
                "conversations": today["conversations"],
                "deflected": today["answered"] - today["answered_handed_off"],
                "handed_off": today["handed_off"],
            }
        )
    first = [s for s in samples if s["k"] == "first_response"]
    resolution = [s for s in samples if s["k"] == "resolution"]
    conversations = totals["conversations"]
    deflected = totals["answered"] - totals["answered_handed_off"]
    rated = sum(csat.values())
    out: dict[str, Any] = {
        "since": period.since.isoformat(),
        "until": period.until.isoformat(),
        "channel": channel,
        "language": language,
        "conversations": conversations,
        "answered": totals["answered"],
        "deflected": deflected,
        "deflection_rate": _rate(deflected, conversations),
        "handed_off": totals["handed_off"],
        "handoff_rate": _rate(totals["handed_off"], conversations),
        "fallbacks": totals["fallback"],
        "not_helpful": totals["not_helpful"],
        "handoffs": {
            "total": totals["handoffs"],
            "by_reason": dict(reasons.most_common()),
            "by_severity": {s.value: severities[s.value] for s in Severity if severities[s.value]},
        },
        "first_response": {
            **_times(first),
            "by_severity": {
                s.value: _times(x for x in first if x["sev"] == s.value)
                for s in Severity
                if any(x["sev"] == s.value for x in first)
            },
        },
        "resolution": {
            **_times(resolution),
            "by_severity": {
                s.value: _times(x for x in resolution if x["sev"] == s.value)
                for s in Severity
                if any(x["sev"] == s.value for x in resolution)
            },
        },
        "sla_breaches": sum(1 for s in samples if s["t"] and s["s"] > s["t"]),
        "csat": {
            "count": rated,
            "average": round(sum(int(k) * n for k, n in csat.items()) / rated, 2) if rated else None,
            "distribution": {str(score): csat[str(score)] for score in range(1, 6)},
        },
        "top_intents": [{"intent": k, "count": n} for k, n in intents.most_common(TOP)],
        "top_fallbacks": [{"text": k, "count": n} for k, n in fallbacks.most_common(TOP)],
        "by_channel": {k: _dimension(v) for k, v in sorted(by["channel"].items())},
        "by_language": {k: _dimension(v) for k, v in sorted(by["language"].items())},
        "daily": daily,
    }
    return out


def _dimension(counts: Counter[str]) -> dict[str, Any]:
    deflected = counts["answered"] - counts["answered_handed_off"]
    return {
        "conversations": counts["conversations"],
        "deflected": deflected,
        "deflection_rate": _rate(deflected, counts["conversations"]),
        "handed_off": counts["handed_off"],
        "handoff_rate": _rate(counts["handed_off"], counts["conversations"]),
    }


def to_csv(numbers: dict[str, Any]) -> str:
    """The report as ``section,key,value`` rows (one figure a row, spreadsheet-ready)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "key", "value"])
    for key in ("since", "until", "channel", "language", "conversations", "answered", "deflected"):
        writer.writerow(["summary", key, numbers[key] if numbers[key] is not None else ""])
    for key in ("deflection_rate", "handed_off", "handoff_rate", "fallbacks", "not_helpful", "sla_breaches"):
        writer.writerow(["summary", key, numbers[key] if numbers[key] is not None else ""])
    for name in ("by_reason", "by_severity"):
        for key, value in numbers["handoffs"][name].items():
            writer.writerow([f"handoffs_{name}", key, value])
    for section in ("first_response", "resolution"):
        for key, value in numbers[section].items():
            if key == "by_severity":
                for severity, figures in value.items():
                    for k, v in figures.items():
                        writer.writerow([f"{section}_{severity}", k, "" if v is None else v])
            else:
                writer.writerow([section, key, "" if value is None else value])
    for score, count in numbers["csat"]["distribution"].items():
        writer.writerow(["csat", score, count])
    for row in numbers["top_intents"]:
        writer.writerow(["top_intents", row["intent"], row["count"]])
    for row in numbers["top_fallbacks"]:
        writer.writerow(["top_fallbacks", row["text"], row["count"]])
    for dimension in ("by_channel", "by_language"):
        for name, figures in numbers[dimension].items():
            for k, v in figures.items():
                writer.writerow([f"{dimension}_{name}", k, "" if v is None else v])
    for row in numbers["daily"]:
        for k in ("conversations", "deflected", "handed_off"):
            writer.writerow([f"daily_{row['day']}", k, row[k]])
    return out.getvalue()
