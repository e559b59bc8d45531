"""Dates as users write them (2026-11-01, 11月1日, 昨天, last Friday, Nov 3), normalised to ISO."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_MONTH_RE = (
    r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_CN_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_EN_WEEKDAY = {
    d: i for i, d in enumerate(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])
}
_RELATIVE = {
    "今天": 0,
    "今日": 0,
    "今早": 0,
    "今天早上": 0,
    "今晚": 0,
    "昨天": -1,
    "昨日": -1,
    "昨晚": -1,
    "前天": -2,
    "大前天": -3,
    "明天": 1,
    "后天": 2,
    "today": 0,
    "this morning": 0,
    "tonight": 0,
    "yesterday": -1,
    "last night": -1,
    "tomorrow": 1,
    "the day before yesterday": -2,
}
_NUMBERS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "a": 1,
    "一": 1,
    "两": 2,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
}

# Matched against normalised (lower-case, half-width, simplified) text; order matters (longest first).
DATE = re.compile(
    r"(?<!\d)(?P<y1>20\d{2})\s?[-/.年]\s?(?P<m1>\d{1,2})\s?[-/.月]\s?(?P<d1>\d{1,2})(?:\s?[日号])?(?!\d)"
    r"|(?<!\d)(?P<m2>\d{1,2})\s?月\s?(?P<d2>\d{1,2})\s?[日号](?!\d)"
    r"|(?<![\d.])(?P<d3>\d{1,2})\s?号(?!\d)"
    r"|(?P<rel>the day before yesterday|yesterday|today|tomorrow|this morning|tonight|last night"
    r"|今天早上|今天|今日|今早|今晚|昨天|昨日|昨晚|大前天|前天|明天|后天)"
    r"|(?P<ago>\d{1,2}|one|two|three|four|five|six|seven|a|[一两二三四五六七])\s?(?P<unit>days?|weeks?|天|个?星期|周)\s?(?:ago|前)"
    r"|(?<![a-z])(?P<bareday>monday|tuesday|wednesday|thursday|friday|saturday|sunday)(?![a-z])"
    r"|(?P<cnweek>上|这|本|下)?(?:个)?(?:周|星期|礼拜)(?P<cnday>[一二三四五六日天])"
    r"|(?P<enweek>last|this|next)\s(?P<enday>monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
    rf"|\b{_MONTH_RE}\.?\s(?P<d4>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s(?P<y4>20\d{{2}}))?\b"
    rf"|\b(?P<d5>\d{{1,2}})(?:st|nd|rd|th)?\s{_MONTH_RE.replace('mon', 'mon5')}\.?(?:,?\s(?P<y5>20\d{{2}}))?\b"
)


@dataclass(frozen=True)
class ParsedDate:
    date: dt.date


def _safe(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _recent(today: dt.date, month: int, day: int) -> dt.date | None:
    """A month/day with no year: this year's, or last year's when that would lie far in the future."""
    candidate = _safe(today.year, month, day)
    if candidate and (candidate - today).days > 31:
        candidate = _safe(today.year - 1, month, day)
    return candidate


def _weekday(today: dt.date, which: str | None, weekday: int) -> dt.date:
    monday = today - dt.timedelta(days=today.weekday())
    shift = {"上": -7, "last": -7, "下": 7, "next": 7}.get(which or "", 0)
    return monday + dt.timedelta(days=shift + weekday)


def parse_date(match: re.Match[str], today: dt.date) -> ParsedDate | None:
    g = match.groupdict()
    date: dt.date | None
    if g["y1"]:
        date = _safe(int(g["y1"]), int(g["m1"]), int(g["d1"]))
    elif g["m2"]:
        date = _recent(today, int(g["m2"]), int(g["d2"]))
    elif g["d3"]:
        date = _safe(today.year, today.month, int(g["d3"]))
        if date and date > today:  # "3号" later than today means last month's
            prev = today.replace(day=1) - dt.timedelta(days=1)
            date = _safe(prev.year, prev.month, int(g["d3"]))
    elif g["rel"]:
        date = today + dt.timedelta(days=_RELATIVE[g["rel"]])
    elif g["ago"]:
        count = int(g["ago"]) if g["ago"].isdigit() else _NUMBERS[g["ago"]]
        weeks = g["unit"].startswith(("week", "星期", "个星期", "周"))
        date = today - dt.timedelta(days=count * (7 if weeks else 1))
    elif g["bareday"]:
        # A weekday on its own in a support chat is the most recent one ("uploaded on friday").
        date = today - dt.timedelta(days=(today.weekday() - _EN_WEEKDAY[g["bareday"]]) % 7)
    elif g["cnday"]:
        date = _weekday(today, g["cnweek"], _CN_WEEKDAY[g["cnday"]])
    elif g["enday"]:
        date = _weekday(today, g["enweek"], _EN_WEEKDAY[g["enday"]])
    elif g["mon"]:
        month = _MONTHS[g["mon"][:3]]
        date = _safe(int(g["y4"]), month, int(g["d4"])) if g["y4"] else _recent(today, month, int(g["d4"]))
    elif g["mon5"]:
        month = _MONTHS[g["mon5"][:3]]
        date = _safe(int(g["y5"]), month, int(g["d5"])) if g["y5"] else _recent(today, month, int(g["d5"]))
    else:
        date = None
    return ParsedDate(date) if date else None
