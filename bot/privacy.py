"""Masking personal data in stored text and logs: phone numbers, 身份证号, tax ids and bank-card numbers
keep only their last four characters. Invoice numbers and codes are kept — support needs them."""

from __future__ import annotations

import re

from bot.nlu.identifiers import is_valid_uscc

_B = r"(?<![0-9A-Za-z])"
_A = r"(?![0-9A-Za-z])"
_PHONE = re.compile(r"(?<!\d)(?:\+?86[\s\-]?)?1[3-9]\d[\s\-]?\d{4}[\s\-]?\d{4}(?!\d)")
_ID_CARD = re.compile(rf"{_B}\d{{17}}[\dXx]{_A}")
_USCC = re.compile(rf"{_B}[0-9A-Za-z]{{18}}{_A}")
_OLD_TAX_ID = re.compile(
    r"(?:税号|纳税人识别号|识别号|tax\s?id)\s?[:：]?\s?(?P<id>\d{15})(?!\d)", re.IGNORECASE
)
_CARD = re.compile(rf"{_B}\d{{4}}(?:[\s\-]?\d{{4}}){{2}}[\s\-]?\d{{4,7}}{_A}")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def is_id_card(number: str) -> bool:
    """Chinese resident ID: 17 digits and an ISO 7064 MOD 11-2 check character."""
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == number[17].upper()


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask(text: str) -> str:
    """Replace every letter/digit but the last four with '*', keeping separators."""
    positions = [i for i, ch in enumerate(text) if ch.isalnum()]
    hidden = set(positions[:-4])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(text))


def mask_sensitive(text: str) -> str:
    """``text`` with personal identifiers masked (idempotent)."""
    text = _PHONE.sub(lambda m: _mask(m.group(0)), text)
    text = _ID_CARD.sub(lambda m: _mask(m.group(0)) if is_id_card(m.group(0)) else m.group(0), text)
    text = _USCC.sub(lambda m: _mask(m.group(0)) if is_valid_uscc(m.group(0)) else m.group(0), text)
    text = _OLD_TAX_ID.sub(lambda m: m.group(0)[: m.start("id") - m.start()] + _mask(m.group("id")), text)

    def card(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        return _mask(m.group(0)) if 16 <= len(digits) <= 19 and luhn(digits) else m.group(0)

    return _CARD.sub(card, text)
