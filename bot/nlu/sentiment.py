"""Lexicon sentiment for zh + en with negation and intensifiers; explainable by construction."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.errors import DataError
from bot.nlu.lexicon import Negation, compile_terms

NEGATIVE_AT = -2.0  # scores at or below are negative
POSITIVE_AT = 1.0


@dataclass
class SentimentLexicon:
    weights: dict[str, float] = field(default_factory=dict)
    negation: Negation = field(default_factory=lambda: Negation((), ()))
    intensifiers: frozenset[str] = frozenset()
    _pattern: re.Pattern[str] | None = None

    @classmethod
    def from_file(cls, path: Path) -> SentimentLexicon:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise DataError(path, None, f"cannot read sentiment lexicon: {exc}") from exc
        weights: dict[str, float] = {}
        for polarity in ("negative", "positive"):
            for weight, terms in (raw.get(polarity) or {}).items():
                for term in terms or []:
                    weights[str(term).lower()] = float(weight)
        lexicon = cls(
            weights,
            Negation.from_terms(raw.get("negation", [])),
            frozenset(str(t).lower() for t in raw.get("intensifiers", [])),
        )
        lexicon._pattern = compile_terms(weights)
        return lexicon

    def _intensified(self, text: str, start: int) -> bool:
        before = text[max(0, start - 12) : start]
        return any(before.rstrip().endswith(i) for i in self.intensifiers)

    def score(self, text: str) -> dict[str, Any]:
        """Label (negative/neutral/positive), score and the words that decided it."""
        total, reasons = 0.0, []
        if self._pattern is not None:
            for m in self._pattern.finditer(text):
                term = m.group(0)
                weight = self.weights[term]
                if self.negation.negates(text, m.start(), term.isascii()):
                    weight = (
                        -weight * 0.5 if weight > 0 else 0.0
                    )  # "not good" is mildly bad; "not bad" is not bad
                    reasons.append(f"not:{term}")
                elif self._intensified(text, m.start()):
                    weight *= 1.5
                    reasons.append(f"very:{term}")
                else:
                    reasons.append(term)
                total += weight
        if total < 0 and re.search(r"[!?！？]{3,}", text):
            total -= 1.0
            reasons.append("punctuation:!!!")
        label = "negative" if total <= NEGATIVE_AT else "positive" if total >= POSITIVE_AT else "neutral"
        return {"label": label, "score": round(total, 2), "reasons": reasons}
