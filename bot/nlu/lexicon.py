"""Keyword matching shared by severity and sentiment: longest-first, with negation look-behind.

Chinese keywords match anywhere; English keywords match on word boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


def _is_ascii_word(term: str) -> bool:
    return term.isascii()


def compile_terms(terms: Iterable[str]) -> re.Pattern[str] | None:
    """One alternation, longest terms first so that 不好用 wins over 好用."""
    unique = sorted({t.lower() for t in terms if t}, key=len, reverse=True)
    if not unique:
        return None
    parts = [rf"(?<![a-z]){re.escape(t)}(?![a-z])" if _is_ascii_word(t) else re.escape(t) for t in unique]
    return re.compile("|".join(parts))


@dataclass(frozen=True)
class Negation:
    zh: tuple[str, ...]
    en: tuple[str, ...]

    @classmethod
    def from_terms(cls, terms: Iterable[str]) -> Negation:
        terms = [str(t).lower() for t in terms]
        return cls(tuple(t for t in terms if not t.isascii()), tuple(t for t in terms if t.isascii()))

    def negates(self, text: str, start: int, ascii_term: bool) -> bool:
        """True when a negation stands right before ``text[start:]`` (two chars or two words back)."""
        if ascii_term:
            words = re.findall(r"[a-z']+", text[max(0, start - 30) : start])[-2:]
            return any(w in self.en or w.endswith("n't") for w in words)
        before = text[max(0, start - 3) : start]
        return any(neg in before for neg in self.zh)
