"""The on-call rota: who counts as on duty when, in the deployment's time zone.

``rota.yml``::

    shifts:
      - agents: [wang, li]          # agent names
        days: [mon, tue, wed, thu, fri]
        start: "09:00"
        end: "18:00"
      - agents: [night-owl]
        days: [mon, tue, wed, thu, fri, sat, sun]
        start: "18:00"
        end: "09:00"                # past midnight
An agent named in no shift is on duty whenever online; with no rota file, everyone online is on duty.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from bot.errors import ConfigError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Shift:
    agents: frozenset[str]
    days: frozenset[int]
    start: dt.time
    end: dt.time

    def covers(self, moment: dt.datetime) -> bool:
        t, day = moment.time(), moment.weekday()
        if self.start <= self.end:
            return day in self.days and self.start <= t < self.end
        # An overnight shift belongs to the day it starts on.
        yesterday = (day - 1) % 7
        return (day in self.days and t >= self.start) or (yesterday in self.days and t < self.end)


@dataclass
class Rota:
    shifts: list[Shift] = field(default_factory=list)
    timezone: str = "Asia/Shanghai"

    @classmethod
    def from_file(cls, path: Path | None, timezone: str) -> Rota:
        if path is None or not path.exists():
            return cls([], timezone)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            shifts = []
            for item in raw.get("shifts", []):
                days = [DAYS.index(str(d).lower()[:3]) for d in item.get("days", DAYS)]
                shifts.append(
                    Shift(
                        frozenset(map(str, item["agents"])),
                        frozenset(days),
                        dt.time.fromisoformat(str(item.get("start", "00:00"))),
                        dt.time.fromisoformat(str(item.get("end", "23:59"))),
                    )
                )
        except (yaml.YAMLError, KeyError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"{path}: shift {locals().get('i', '?')}: {exc}. Each shift needs agents, days, "
                "start and end (HH:MM)"
            ) from exc
        return cls(shifts, timezone)

    def next_start(self, agent_name: str, now: dt.datetime) -> dt.datetime | None:
        """The start of ``agent_name``'s next shift after ``now`` (None: named in no shift)."""
        zone = ZoneInfo(self.timezone)
        moment = now.astimezone(zone)
        starts = [
            dt.datetime.combine(moment.date() + dt.timedelta(days=ahead), shift.start, zone)
            for shift in self.shifts
            if agent_name in shift.agents
            for ahead in range(8)
            if (moment.date() + dt.timedelta(days=ahead)).weekday() in shift.days
        ]
        return min((s for s in starts if s > moment), default=None)

    def on_duty(self, agent_name: str, now: dt.datetime | None = None) -> bool:
        moment = (now or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(self.timezone))
        mine = [s for s in self.shifts if agent_name in s.agents]
        return not mine or any(s.covers(moment) for s in mine)
