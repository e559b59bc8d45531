"""Ownership transitions, SLA clocks and masking: small pure pieces, table-driven."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.ownership import ALLOWED, Owner, TransitionError, check_transition, human_owns
from bot.privacy import is_id_card, luhn, mask_sensitive
from bot.settings import SLATargets
from bot.sla import add_working_days, format_due, sla_clock


@pytest.mark.parametrize("current", list(Owner))
@pytest.mark.parametrize("target", list(Owner))
def test_transitions(current: Owner, target: Owner) -> None:
    if target in ALLOWED[current]:
        check_transition("c1", current, target)
    else:
        with pytest.raises(TransitionError, match=f"cannot go from {current} to {target}"):
            check_transition("c1", current, target)


def test_who_owns() -> None:
    """A waiting ticket is not "owned": the bot keeps answering the user's other questions."""
    assert [s for s in Owner if human_owns(s)] == [Owner.QUEUED, Owner.ASSIGNED]


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        ("2026-11-23T10:00", 1, "2026-11-24T10:00"),  # Monday -> Tuesday
        ("2026-11-27T10:00", 1, "2026-11-30T10:00"),  # Friday -> Monday
        ("2026-11-28T10:00", 1, "2026-11-30T10:00"),  # Saturday -> Monday
        ("2026-11-26T10:00", 2, "2026-11-30T10:00"),
    ],
)
def test_working_days(start: str, days: int, expected: str) -> None:
    assert add_working_days(dt.datetime.fromisoformat(start), days) == dt.datetime.fromisoformat(expected)


def test_sla_clock_per_tier() -> None:
    started = int(dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC).timestamp() * 1000)  # a Friday
    urgent = sla_clock("urgent", SLATargets(), started, "UTC")
    assert (urgent.first_response_seconds, urgent.resolution_seconds) == (300, 3600)
    assert urgent.first_response_due == "2026-11-27T09:05:00+00:00"
    assert urgent.scheduled_from is None
    normal = sla_clock("normal", SLATargets(), started, "UTC")
    assert normal.resolution_due == "2026-11-30T09:00:00+00:00"  # one working day: Monday
    assert sla_clock("unknown", SLATargets(), started, "UTC").first_response_seconds == 1800


def test_sla_clock_from_the_next_shift_when_nobody_is_on_duty() -> None:
    """The promise comes from the on-duty schedule, not from the tier table alone."""
    started = int(dt.datetime(2026, 11, 27, 23, 0, tzinfo=dt.UTC).timestamp() * 1000)
    shift = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)
    clock = sla_clock("important", SLATargets(), started, "Asia/Shanghai", not_before=shift)
    assert clock.scheduled_from == "2026-11-28T17:00:00+08:00"
    assert clock.first_response_due == "2026-11-28T17:15:00+08:00"
    assert clock.started_at == "2026-11-28T07:00:00+08:00"
    assert format_due(clock.first_response_due) == "2026-11-28 17:15 (UTC+08:00)"
    earlier = dt.datetime(2026, 11, 27, 22, 0, tzinfo=dt.UTC)  # already started: counts from now
    assert sla_clock("important", SLATargets(), started, "UTC", not_before=earlier).scheduled_from is None


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("手机13812345678", "手机*******5678"),
        ("call +86 139-0000-1111", "call +** ***-****-1111"),
        ("身份证 11010519491231002X", "身份证 **************002X"),
        ("税号91350100M000100Y43", "税号**************0Y43"),
        ("纳税人识别号 110108123456789", "纳税人识别号 ***********6789"),
        ("卡号4111111111111111", "卡号************1111"),
        ("发票号码24442000000123456789", "发票号码24442000000123456789"),  # support needs invoice numbers
        ("发票代码044031900111", "发票代码044031900111"),
        ("订单 1234567812345678", "订单 1234567812345678"),  # fails Luhn: not a card
        ("税号91350100M000100Y44", "税号91350100M000100Y44"),  # wrong check character: not a tax id
    ],
)
def test_masking(text: str, masked: str) -> None:
    assert mask_sensitive(text) == masked
    assert mask_sensitive(masked) == masked  # idempotent


def test_checksums() -> None:
    assert is_id_card("11010519491231002X") and not is_id_card("110105194912310021")
    assert luhn("4111111111111111") and not luhn("4111111111111112")
