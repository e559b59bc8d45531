"""Entity extraction: validated regular expressions for the domain's identifiers and values, plus the
training data's own ``regex`` and ``lookup`` tables (spaCy's PhraseMatcher) for any other entity.

Patterns run on the normalised text; every entity's ``start``/``end`` point into the original text.
A candidate that fails validation (a USCC with a wrong check character, a 20-digit number from an
impossible year) is not an entity.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.nlu.amounts import AMOUNT, parse_amount
from bot.nlu.dates import DATE, parse_date
from bot.nlu.identifiers import is_valid_digital_invoice_number, is_valid_old_taxpayer_id, is_valid_uscc
from bot.nlu.normalize import Normalized

EXTRACTOR = "TriageRegexEntityExtractor"

# Context words that make a bare 8/10/15-digit number an invoice number, invoice code or tax id.
_INVOICE_NO_CTX = r"(?:发票号码|票号|号码|发票号|invoice\s?(?:no\.?|number|#|num))"
_INVOICE_CODE_CTX = r"(?:发票代码|代码|invoice\s?code)"
_TAX_CTX = r"(?:税号|纳税人识别号|识别号|信用代码|tax\s?(?:id|no\.?|number)|tin|uscc)"
_SEP = r"\s?(?:是|为|:|#)?\s?"
_D = r"(?<![0-9a-z])"  # not glued to a preceding letter or digit
_E = r"(?![0-9a-z])"


@dataclass(frozen=True)
class Rule:
    entity: str
    pattern: re.Pattern[str]
    group: str | int = 0
    # Returns the normalised value, or None to reject the candidate.
    value: Callable[[str, re.Match[str], dt.date], Any] = lambda text, m, today: text
    priority: int = 0


def _digits(text: str, m: re.Match[str], today: dt.date) -> str:
    return re.sub(r"\D", "", text)


def _uscc(text: str, m: re.Match[str], today: dt.date) -> str | None:
    code = text.upper()
    if len(code) == 18:
        return code if is_valid_uscc(code) else None
    return code if is_valid_old_taxpayer_id(code) and m.group("ctx") else None


def _invoice_number(text: str, m: re.Match[str], today: dt.date) -> str | None:
    if len(text) == 20:
        return text if is_valid_digital_invoice_number(text, today) else None
    return text  # 8 digits only match after a context word


def _phone(text: str, m: re.Match[str], today: dt.date) -> str:
    digits = re.sub(r"\D", "", text)
    return digits[-11:] if digits.startswith("86") and len(digits) == 13 else digits


def _amount(text: str, m: re.Match[str], today: dt.date) -> dict[str, Any] | None:
    amount = parse_amount(m)
    return {"amount": amount.value, "currency": amount.currency} if amount else None


def _date(text: str, m: re.Match[str], today: dt.date) -> str | None:
    parsed = parse_date(m, today)
    return parsed.date.isoformat() if parsed else None


def _upper(text: str, m: re.Match[str], today: dt.date) -> str:
    return text.upper()


RULES: tuple[Rule, ...] = (
    # A match starts only where a run of address characters starts (the lookbehind), and parts are bounded as
    # RFC 5321 bounds them: without both, 32,000 digits cost 4 s of backtracking, each start scanning the run.
    Rule(
        "email",
        re.compile(r"(?<![a-z0-9._%+\-])[a-z0-9._%+\-]{1,64}@[a-z0-9.\-]{1,253}\.[a-z]{2,24}"),
        priority=90,
    ),
    Rule("ticket_id", re.compile(rf"{_D}t-\d{{8}}-\d{{4}}{_E}"), value=_upper, priority=90),
    Rule(
        "tax_id",
        re.compile(rf"(?P<ctx>{_TAX_CTX}{_SEP})?{_D}(?P<code>[0-9a-z]{{18}}|[0-9a-z]{{15}}){_E}"),
        group="code",
        value=_uscc,
        priority=80,
    ),
    Rule(
        "invoice_number",
        re.compile(rf"{_D}(?P<num>\d{{20}}){_E}"),
        group="num",
        value=_invoice_number,
        priority=70,
    ),
    Rule(
        "invoice_number",
        re.compile(rf"{_INVOICE_NO_CTX}{_SEP}{_D}(?P<num>\d{{8}}){_E}"),
        group="num",
        value=_invoice_number,
        priority=70,
    ),
    Rule(
        "invoice_code",
        re.compile(rf"{_INVOICE_CODE_CTX}{_SEP}{_D}(?P<code>\d{{10}}|\d{{12}}){_E}"),
        group="code",
        value=_digits,
        priority=65,
    ),
    Rule(
        "invoice_code",
        re.compile(rf"{_D}(?P<code>[01]\d{{11}}){_E}"),
        group="code",
        value=_digits,
        priority=60,
    ),
    Rule(
        "phone",
        re.compile(r"(?<![0-9])(?:\+?86[\s\-]?)?1[3-9]\d[\s\-]?\d{4}[\s\-]?\d{4}(?![0-9])"),
        value=_phone,
        priority=55,
    ),
    Rule("phone", re.compile(rf"{_D}0\d{{2,3}}-\d{{7,8}}{_E}"), value=_digits, priority=55),
    Rule("date", DATE, value=_date, priority=50),
    Rule("amount", AMOUNT, value=_amount, priority=45),
    Rule(
        "error_code",
        re.compile(
            r"(?:错误码|错误代码|错误编号|报错码|error\s?code|err(?:or)?\s?(?:no\.?|#)|errcode|code)\s?[:=：]?\s?"
            r"(?P<code>[a-z0-9][a-z0-9_\-.]{1,24}[a-z0-9]|\d{2,})"
        ),
        group="code",
        value=_upper,
        priority=40,
    ),
    Rule(
        "error_code",
        re.compile(
            r"(?<![\w\-])(?P<code>err[_\-][a-z0-9_\-]+|0x[0-9a-f]{4,8}|[a-z]{1,4}[_\-]?\d{3,6})(?![\w\-])"
        ),
        group="code",
        value=_upper,
        priority=30,
    ),
    Rule(
        "error_code", re.compile(r"(?:error|错误|报错)\s?(?P<code>\d{3,5})(?!\d)"), group="code", priority=30
    ),
)


@dataclass
class EntityExtractor:
    """Runs :data:`RULES` and the data's own regexes (which outrank the generic error-code guesses) and
    lookup tables, and resolves overlaps."""

    regexes: dict[str, list[str]] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    synonyms: dict[str, str] = field(default_factory=dict)
    _compiled: list[Rule] = field(init=False, default_factory=list)
    _matcher: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        for name, patterns in self.regexes.items():
            for pattern in patterns:
                self._compiled.append(Rule(name, re.compile(pattern, re.IGNORECASE), priority=35))

    def _phrase_matcher(self) -> Any:
        if self._matcher is None and self.lookups:
            from spacy.matcher import PhraseMatcher

            from bot.nlu.tokenize import _chinese

            nlp = _chinese()
            self._matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
            for name, items in self.lookups.items():
                self._matcher.add(name, list(nlp.tokenizer.pipe(i.lower() for i in items)))
        return self._matcher

    def extract(self, norm: Normalized, today: dt.date) -> list[dict[str, Any]]:
        candidates: list[tuple[int, int, int, str, Any]] = []  # (priority, start, end, entity, value)
        for rule in (*RULES, *self._compiled):
            for m in rule.pattern.finditer(norm.text):
                start, end = m.span(rule.group)
                if start == end:
                    continue
                value = rule.value(norm.original[slice(*norm.span_to_original(start, end))], m, today)
                if value is not None:
                    candidates.append((rule.priority, start, end, rule.entity, value))
        matcher = self._phrase_matcher()
        if matcher is not None:
            from bot.nlu.tokenize import _chinese

            doc = _chinese().make_doc(norm.text)
            for match_id, s, e in matcher(doc):
                span = doc[s:e]
                candidates.append(
                    (10, span.start_char, span.end_char, doc.vocab.strings[match_id], span.text)
                )
        return [self._entity(norm, *c) for c in _resolve_overlaps(candidates)]

    def _entity(
        self, norm: Normalized, priority: int, start: int, end: int, entity: str, value: Any
    ) -> dict[str, Any]:
        o_start, o_end = norm.span_to_original(start, end)
        if isinstance(value, str):
            value = self.synonyms.get(value.lower(), value)
        return {
            "entity": entity,
            "start": o_start,
            "end": o_end,
            "value": value,
            "text": norm.original[o_start:o_end],
            "extractor": EXTRACTOR,
            "confidence_entity": 1.0,
        }


def _resolve_overlaps(
    candidates: Iterable[tuple[int, int, int, str, Any]],
) -> list[tuple[int, int, int, str, Any]]:
    """Keep the highest-priority, then longest, candidate of each overlapping group; sorted by position.

    The chosen spans never overlap, so they are kept ordered by start and a candidate is checked against its
    one neighbour on the left (bisect): n log n, where comparing with every chosen span was quadratic (14,000
    amounts in a pasted spreadsheet took 22 s)."""
    import bisect

    starts: list[int] = []
    chosen: list[tuple[int, int, int, str, Any]] = []  # ordered by start, like ``starts``
    for cand in sorted(candidates, key=lambda c: (-c[0], -(c[2] - c[1]), c[1])):
        _, start, end = cand[:3]
        i = bisect.bisect_left(starts, end)  # chosen[:i] start before this candidate ends
        if i and chosen[i - 1][2] > start:
            continue  # the nearest span starting before our end reaches into us
        starts.insert(i, start)
        chosen.insert(i, cand)
    return chosen
