"""Masking personal data before it is stored or logged: phone numbers, 身份证号, tax ids and bank-card
numbers keep only their last four characters, email addresses their first letter and domain. Invoice
numbers and codes are kept — support needs them.

What is masked where (README, "Security"): the transcript's user messages, the handoff's trigger and the
ticket's summary, the bot's memory of a pending question, the entities on the conversation record and the
agent's context card, and the responses kept for retries. Entities of the kinds in ``SENSITIVE_ENTITIES``
are masked whatever their format (an NLU backend or a training-data regex may find what the patterns
here do not); everything else goes through :func:`mask_sensitive`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from bot.nlu.identifiers import is_valid_uscc

SENSITIVE_ENTITIES = frozenset({"phone", "tax_id", "uscc", "id_card", "bank_card", "email"})

_B = r"(?<![0-9A-Za-z])"
_A = r"(?![0-9A-Za-z])"
_PHONE = re.compile(r"(?<!\d)(?:\+?86[\s\-]?)?1[3-9]\d[\s\-]?\d{4}[\s\-]?\d{4}(?!\d)")
_ID_CARD = re.compile(rf"{_B}\d{{17}}[\dXx]{_A}")
_USCC = re.compile(rf"{_B}[0-9A-Za-z]{{18}}{_A}")
# The context words of the NLU's tax_id entity (bot/nlu/entities.py): a 15-character id is told from any
# other number only by them.
_OLD_TAX_ID = re.compile(
    r"(?:税号|纳税人识别号|识别号|信用代码|tax\s?(?:id|no\.?|number)|tin|uscc)\s?(?:是|为|[:：#])?\s?"
    r"(?P<id>\d{6}[0-9A-Za-z]{9})(?![0-9A-Za-z])",
    re.IGNORECASE,
)
_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9._%+\-]+)@(?P<domain>[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})"
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
    text = _USCC.sub(lambda m: _mask(m.group(0)) if is_valid_uscc(m.group(0).upper()) else m.group(0), text)
    text = _OLD_TAX_ID.sub(lambda m: m.group(0)[: m.start("id") - m.start()] + _mask(m.group("id")), text)

    def card(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        return _mask(m.group(0)) if 16 <= len(digits) <= 19 and luhn(digits) else m.group(0)

    text = _CARD.sub(card, text)
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), text)


def mask_email(email: str) -> str:
    """``alice@acme.com`` → ``a***@acme.com``: enough to recognise, not enough to write to."""
    local, at, domain = email.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else f"{email[:1]}***"


def mask_value(kind: str, value: str) -> str:
    """An entity value of a sensitive ``kind``, masked whatever its format."""
    return mask_email(value) if kind == "email" and "@" in value else _mask(value)


def mask_entity(entity: Mapping[str, Any]) -> dict[str, Any]:
    """An entity (Rasa's shape: ``entity``, ``value``, ``text`` …) as it may be stored or shown."""
    kind = str(entity.get("entity", ""))
    out = dict(entity)
    for field in ("value", "text"):
        value = out.get(field)
        if isinstance(value, str):
            out[field] = mask_value(kind, value) if kind in SENSITIVE_ENTITIES else mask_sensitive(value)
    return out


def redact(text: str, entities: Iterable[Any] = ()) -> str:
    """``text`` as it may be stored: the spans of sensitive ``entities`` (parse entities with ``entity``,
    ``start``, ``end`` and ``text``) masked, then whatever :func:`mask_sensitive` finds."""
    for e in sorted(entities, key=lambda e: -int(e.start)):
        if (
            e.entity in SENSITIVE_ENTITIES
            and 0 <= e.start < e.end <= len(text)
            and text[e.start : e.end] == e.text
        ):
            text = text[: e.start] + mask_value(e.entity, e.text) + text[e.end :]
    return mask_sensitive(text)
