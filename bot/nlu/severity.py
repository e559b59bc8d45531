"""Severity tiers (urgent / important / normal) with the reasons that decided them."""

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


@dataclass
class SeverityRules:
    urgent_intents: set[str] = field(default_factory=set)
    important_intents: set[str] = field(default_factory=set)
    # (level, category, compiled alternation)
    patterns: list[tuple[str, str, re.Pattern[str]]] = field(default_factory=list)

    @classmethod
    def from_file(cls, path: Path) -> SeverityRules:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise DataError(path, None, f"cannot read severity rules: {exc}") from exc
        return cls.from_dict(raw, path)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], path: Path | str = "<severity>") -> SeverityRules:
        rules = cls(set(raw.get("urgent_intents", [])), set(raw.get("important_intents", [])))
        for level in (Severity.URGENT, Severity.IMPORTANT):
            groups = raw.get(f"{level}_keywords", {}) or {}
            if not isinstance(groups, dict):
                raise DataError(path, None, f"{level}_keywords must map a category to a list of keywords")
            for category, terms in groups.items():
                pattern = compile_terms(str(t) for t in terms or [])
                if pattern is not None:
                    rules.patterns.append((level, category, pattern))
        return rules

    def assess(self, text: str, intent: str | None) -> dict[str, Any]:
        """Severity of one normalised message, given its (confident) intent or None."""
        reasons: list[str] = []
        level = 0
        if intent in self.urgent_intents:
            level, reasons = 2, [f"intent:{intent}"]
        elif intent in self.important_intents:
            level, reasons = 1, [f"intent:{intent}"]
        for tier, category, pattern in self.patterns:
            for m in pattern.finditer(text):
                if _NEGATION.negates(text, m.start(), m.group(0).isascii()):
                    continue
                level = max(level, LEVELS.index(tier))
                reasons.append(f"{category}:{m.group(0)}")
                break
        return {"level": LEVELS[level], "reasons": reasons}
