"""SLA targets per severity tier, the clocks they start, and due times as users read them."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from bot.contracts.handoff import SLAClock
from bot.settings import SLATargets
from bot.vocabulary import Severity


def add_working_days(start: dt.datetime, days: int) -> dt.datetime:
    """``days`` working days after ``start`` (Saturdays and Sundays skipped; public holidays are not known)."""
    current = start
    added = 0
    while added < days:
        current += dt.timedelta(days=1)
        if current.weekday() < 5:
            added += 1
    return current


def sla_clock(
    severity: str,
    targets: SLATargets,
    started_ms: int,
    timezone: str,
    not_before: dt.datetime | None = None,
) -> SLAClock:
    """The targets of ``severity``'s tier and the due times they give, counted from ``started_ms`` — or,
    when nobody is on duty until ``not_before`` (the next shift), from then: a promise the desk can keep."""
    tier = Severity.parse(severity)
    target = targets.tier(tier)
    start = dt.datetime.fromtimestamp(started_ms / 1000, ZoneInfo(timezone))
    clock_from = start
    if not_before is not None and not_before > start:
        clock_from = not_before.astimezone(ZoneInfo(timezone))
    first_due = clock_from + dt.timedelta(seconds=target.first_response_seconds)
    if target.resolution_seconds is not None:
        resolution_due = clock_from + dt.timedelta(seconds=target.resolution_seconds)
    else:
        resolution_due = add_working_days(clock_from, target.resolution_working_days)
    return SLAClock(
        tier=tier,
        first_response_seconds=target.first_response_seconds,
        resolution_seconds=int((resolution_due - start).total_seconds()),
        first_response_due=first_due.isoformat(timespec="seconds"),
        resolution_due=resolution_due.isoformat(timespec="seconds"),
        started_at=start.isoformat(timespec="seconds"),
        scheduled_from=clock_from.isoformat(timespec="seconds") if clock_from != start else None,
    )


def format_due(iso: str) -> str:
    """A due time as users read it, with its time zone: ``2026-11-30 09:05 (UTC+08:00)``."""
    moment = dt.datetime.fromisoformat(iso)
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M} (UTC{offset[:3]}:{offset[3:]})"
