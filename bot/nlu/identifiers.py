"""Validation of Chinese tax identifiers and invoice numbers.

统一社会信用代码 (unified social credit code) per GB 32100-2015: 18 characters from a 31-symbol
alphabet (digits and upper-case letters without I, O, Z, S, V); the last is a check character computed
from the first 17 with weights 3^i mod 31.
"""

from __future__ import annotations

import datetime as dt

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# First character: the registering authority (1 organs, 5 social orgs, 9 industry & commerce, Y others ...)
USCC_AUTHORITIES = set("123456789ANY")


def uscc_check_char(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(code: str) -> bool:
    """True when ``code`` is an 18-character USCC whose check character is right."""
    code = code.upper()
    if len(code) != 18 or any(c not in USCC_ALPHABET for c in code):
        return False
    if code[0] not in USCC_AUTHORITIES or not code[2:8].isdigit():  # chars 3-8: administrative division
        return False
    return uscc_check_char(code[:17]) == code[17]


def is_valid_old_taxpayer_id(code: str) -> bool:
    """The 15-character 纳税人识别号 used before USCC: a 6-digit division code plus a 9-character org code."""
    return len(code) == 15 and code[:6].isdigit() and code.isalnum()


def is_valid_digital_invoice_number(number: str, today: dt.date | None = None) -> bool:
    """数电发票 numbers are 20 digits whose first two are the two-digit year of issue (2021 on)."""
    if len(number) != 20 or not number.isdigit():
        return False
    year = 2000 + int(number[:2])
    latest = (today or dt.date.today()).year + 1
    return 2021 <= year <= latest
