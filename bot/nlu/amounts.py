"""Money amounts in Chinese and English messages, normalised to a number and an ISO currency code."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_SYMBOLS = {
    "¥": "CNY",
    "￥": "CNY",
    "rmb": "CNY",
    "cny": "CNY",
    "人民币": "CNY",
    "元": "CNY",
    "块": "CNY",
    "块钱": "CNY",
    "$": "USD",
    "us$": "USD",
    "usd": "USD",
    "美元": "USD",
    "美金": "USD",
    "hk$": "HKD",
    "hkd": "HKD",
    "港币": "HKD",
    "€": "EUR",
    "eur": "EUR",
    "欧元": "EUR",
    "yuan": "CNY",
}
_MULTIPLIERS = {"千": 1_000, "k": 1_000, "万": 10_000, "w": 10_000}
_PREFIX = r"(?P<pre>us\$|hk\$|rmb|cny|usd|hkd|eur|[¥￥$€])"
_SUFFIX = r"(?P<suf>块钱|人民币|美元|美金|港币|欧元|元|块|rmb|cny|usd|hkd|eur|yuan)"
_MULT = r"(?P<mult>千|万|k|w)?"

# Matched against normalised (lower-case, half-width) text.
AMOUNT = re.compile(
    rf"(?<![0-9a-z.])(?:{_PREFIX}\s?(?P<n1>{_NUMBER}){_MULT}(?:\s?{_SUFFIX})?"
    rf"|(?P<n2>{_NUMBER})\s?(?P<mult2>千|万|k|w)?\s?{_SUFFIX.replace('suf', 'suf2')})(?![a-z])"
)


@dataclass(frozen=True)
class Amount:
    value: float
    currency: str


def parse_amount(match: re.Match[str]) -> Amount | None:
    number = match.group("n1") or match.group("n2")
    unit = match.group("pre") or match.group("suf") or match.group("suf2")
    mult = match.group("mult") or match.group("mult2")
    if number is None or unit is None:
        return None
    value = float(number.replace(",", "")) * _MULTIPLIERS.get(mult or "", 1)
    return Amount(round(value, 2), _SYMBOLS.get(unit, "CNY"))
