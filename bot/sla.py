"""SLA targets per severity tier, and the clocks they start."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from bot.settings import SLATargets


def add_working_days(start: dt.datetime, days: int) -> dt.datetime:
    """``days`` working days after ``start`` (Saturdays and Sundays skipped; public holidays are not known)."""
    current = start
    added = 0
    while added < days:
        current += dt.timedelta(days=1)
        if current.weekday() < 5:
            added += 1
    return current


def sla_clock(severity: str, targets: SLATargets, started_ms: int, timezone: str) -> dict[str, Any]:
    """The targets of ``severity``'s tier and the due times they give, counted from ``started_ms``."""
    target = targets.tier(severity)
    start = dt.datetime.fromtimestamp(started_ms / 1000, ZoneInfo(timezone))
    first_due = start + dt.timedelta(seconds=target.first_response_seconds)
    if target.resolution_seconds is not None:
        resolution_due = start + dt.timedelta(seconds=target.resolution_seconds)
    else:
        resolution_due = add_working_days(start, target.resolution_working_days)
    return {
        "tier": severity,
        "first_response_seconds": target.first_response_seconds,
        "resolution_seconds": int((resolution_due - start).total_seconds()),
        "first_response_due": first_due.isoformat(timespec="seconds"),
        "resolution_due": resolution_due.isoformat(timespec="seconds"),
        "started_at": start.isoformat(timespec="seconds"),
    }
