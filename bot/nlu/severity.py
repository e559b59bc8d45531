"""Severity tiers (urgent / important / normal) with the reasons that decided them.

Some words count only when the user is *blocked* (something fails, won't open, is gone): "月底结账" in
"月底前要交报销，怎么批量导出" is a question before a deadline, not an emergency; "全公司" in "全公司的报销
政策" is not an outage. An urgent intent the classifier guessed ("今天系统好慢啊" → system_outage) is
urgent only with such evidence, important without. A missing-data intent is important: one user's lost
draft is not an emergency; explicit data-loss words or a whole company blocked make it urgent.
nlu_data/severity.yml lists the words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.errors import DataError
from bot.nlu.lexicon import Negation, compile_terms
from bot.vocabulary import Severity

LEVELS = tuple(reversed(Severity))  # normal, important, urgent: least severe first
_NEGATION = Negation.from_terms(["不", "没", "别", "无需", "不用", "not", "no", "never", "n't"])
# Keyword sections of severity.yml: (level, whether the user must be blocked for the words to count).
SECTIONS = {
    "urgent_keywords": (Severity.URGENT, False),
    "urgent_when_blocked": (Severity.URGENT, True),
    "important_keywords": (Severity.IMPORTANT, False),
    "important_when_blocked": (Severity.IMPORTANT, True),
}


@dataclass(frozen=True)
class KeywordRule:
    level: Severity
    category: str
    pattern: re.Pattern[str]
    needs_blocked: bool = False


@dataclass
class SeverityRules:
    urgent_intents: set[str] = field(default_factory=set)
    important_intents: set[str] = field(default_factory=set)
    patterns: list[KeywordRule] = field(default_factory=list)
    blocked: re.Pattern[str] | None = None  # the user cannot work right now

    @classmethod
    def from_file(cls, path: Path) -> SeverityRules:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise DataError(path, None, f"cannot read severity rules: {exc}") from exc
        return cls.from_dict(raw, path)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], path: Path | str = "<severity>") -> SeverityRules:
        known = {"urgent_intents", "important_intents", "blocked", *SECTIONS}
        if unknown := sorted(set(raw) - known):
            raise DataError(path, None, f"unknown severity section(s) {unknown}; known: {sorted(known)}")
        blocked_terms = raw.get("blocked") or []
        if not isinstance(blocked_terms, list):
            raise DataError(path, None, "blocked must be a list of keywords")
        rules = cls(
            set(raw.get("urgent_intents") or []),
            set(raw.get("important_intents") or []),
            blocked=compile_terms(str(t) for t in blocked_terms),
        )
        for section, (level, needs_blocked) in SECTIONS.items():
            groups = raw.get(section) or {}
            if not isinstance(groups, dict):
                raise DataError(path, None, f"{section} must map a category to a list of keywords")
            for category, terms in groups.items():
                pattern = compile_terms(str(t) for t in terms or [])
                if pattern is not None:
                    rules.patterns.append(KeywordRule(level, str(category), pattern, needs_blocked))
        return rules

    def assess(self, text: str, intent: str | None) -> dict[str, Any]:
        """Severity of one normalised message, given its (confident) intent or None."""
        text = text.replace("\u2019", "'")  # can’t → can't
        blocked = _first(self.blocked, text)
        reasons: list[str] = []
        level = Severity.NORMAL
        if intent in self.urgent_intents:
            level, reasons = (Severity.URGENT if blocked else Severity.IMPORTANT), [f"intent:{intent}"]
        elif intent in self.important_intents:
            level, reasons = Severity.IMPORTANT, [f"intent:{intent}"]
        used_blocked = level is Severity.URGENT
        for rule in self.patterns:
            if rule.needs_blocked and not blocked:
                continue
            if (word := _first(rule.pattern, text)) is None:
                continue
            level = Severity.highest(level, rule.level)
            reasons.append(f"{rule.category}:{word}")
            used_blocked = used_blocked or rule.needs_blocked
        if used_blocked and blocked:
            reasons.append(f"blocked:{blocked}")
        return {"level": level, "reasons": reasons}


def _first(pattern: re.Pattern[str] | None, text: str) -> str | None:
    """The first keyword of ``pattern`` in ``text`` that no negation takes back."""
    if pattern is None:
        return None
    for m in pattern.finditer(text):
        if not _NEGATION.negates(text, m.start(), m.group(0).isascii()):
            return m.group(0)
    return None
