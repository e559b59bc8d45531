"""The on-call rota and the queue order (severity, then VIP tier, then waiting time)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.store.handoffs import queue_score
from handoff_gateway.rota import Rota

ROTA = """
shifts:
  - agents: [wang]
    days: [mon, tue, wed, thu, fri]
    start: "09:00"
    end: "18:00"
  - agents: [owl]
    days: [fri]
    start: "22:00"
    end: "06:00"
"""


@pytest.mark.parametrize(
    ("agent", "moment", "on"),
    [
        ("wang", "2026-11-23T10:00", True),  # Monday, in hours
        ("wang", "2026-11-23T18:00", False),  # the end is exclusive
        ("wang", "2026-11-28T10:00", False),  # Saturday
        ("owl", "2026-11-27T23:00", True),  # Friday night
        ("owl", "2026-11-28T05:59", True),  # past midnight, the shift that began on Friday
        ("owl", "2026-11-29T05:00", False),  # Sunday early: Saturday had no shift
        ("newcomer", "2026-11-29T05:00", True),  # in no shift: on duty whenever online
    ],
)
def test_rota(tmp_path: Path, agent: str, moment: str, on: bool) -> None:
    path = tmp_path / "rota.yml"
    path.write_text(ROTA, encoding="utf-8")
    rota = Rota.from_file(path, "Asia/Shanghai")
    when = dt.datetime.fromisoformat(moment).replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert rota.on_duty(agent, when) is on


def test_bad_rota_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "rota.yml"
    path.write_text("shifts:\n  - days: [mon]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="needs agents, days, start and end"):
        Rota.from_file(path, "UTC")
    assert Rota.from_file(tmp_path / "missing.yml", "UTC").on_duty("anyone")


def test_queue_order() -> None:
    now = 1_795_400_000_000
    order = sorted(
        [
            ("normal-early", queue_score("normal", now)),
            ("normal-vip", queue_score("normal", now + 5000, vip=3)),
            ("important", queue_score("important", now + 9000)),
            ("urgent-late", queue_score("urgent", now + 99_000)),
            ("normal-late", queue_score("normal", now + 1000)),
        ],
        key=lambda item: item[1],
    )
    assert [name for name, _ in order] == [
        "urgent-late",
        "important",
        "normal-vip",
        "normal-early",
        "normal-late",
    ]
