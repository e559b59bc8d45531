"""The NLU's parse of one message, as a frozen type: what the pipeline emits and the policy reads.

The wire shape is Rasa's (``POST /model/parse``) plus language, script, severity, sentiment and the
ambiguity and truncation flags (see :meth:`bot.nlu.state.ParseState.to_parse`). :meth:`Parse.from_rasa`
decodes it strictly: a missing or mistyped field is an :class:`~bot.errors.InputError` that names the field.
Keys it does not know (Rasa's ``text_tokens``, ``response_selector``) are ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NoReturn, TypeVar

from bot.errors import InputError
from bot.vocabulary import Script, Severity

_E = TypeVar("_E", bound=StrEnum)
_MISSING = object()


@dataclass(frozen=True)
class Intent:
    name: str
    confidence: float

    @classmethod
    def from_rasa(cls, d: Any, where: str) -> Intent:
        m = _mapping(d, where)
        return cls(_str(m, "name", where), _number(m, "confidence", where))

    def to_rasa(self) -> dict[str, Any]:
        return {"name": self.name, "confidence": self.confidence}


@dataclass(frozen=True)
class Entity:
    """One extracted entity; ``start``/``end`` index the original text. ``value`` is the normalised value:
    a string, a number, or (amounts) a read-only dict such as ``{"amount": 12.5, "currency": "CNY"}``."""

    entity: str
    start: int
    end: int
    value: Any
    text: str  # the matched original text
    extractor: str | None = None
    confidence_entity: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _freeze(self.value))

    @classmethod
    def from_rasa(cls, d: Any, where: str, message: str = "") -> Entity:
        """``text`` is optional on the wire (Rasa servers leave it out): then it is cut from ``message``."""
        m = _mapping(d, where)
        start, end = _int(m, "start", where), _int(m, "end", where)
        text = _str(m, "text", where, optional=True)
        return cls(
            entity=_str(m, "entity", where),
            start=start,
            end=end,
            value=_get(m, "value", where),
            text=message[start:end] if text is None else text,
            extractor=_str(m, "extractor", where, optional=True),
            confidence_entity=_number(m, "confidence_entity", where, optional=True),
        )

    def to_rasa(self) -> dict[str, Any]:
        out = {**self.summary(), "text": self.text}
        for key in ("extractor", "confidence_entity"):  # optional: written only when known
            if (value := getattr(self, key)) is not None:
                out[key] = value
        return out

    def summary(self) -> dict[str, Any]:
        return {"entity": self.entity, "start": self.start, "end": self.end, "value": _thaw(self.value)}


@dataclass(frozen=True)
class SeverityAssessment:
    level: Severity = Severity.NORMAL
    reasons: tuple[str, ...] = ()  # "intent:system_outage", "keyword:全部", … in the order they matched

    @classmethod
    def from_rasa(cls, d: Any, where: str) -> SeverityAssessment:
        m = _mapping(d, where)
        return cls(_enum(m, "level", Severity, where), _strings(m, "reasons", where))

    def to_rasa(self) -> dict[str, Any]:
        return {"level": self.level.value, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Sentiment:
    label: str = "neutral"  # negative | neutral | positive
    score: float = 0.0
    reasons: tuple[str, ...] = ()

    @classmethod
    def from_rasa(cls, d: Any, where: str) -> Sentiment:
        m = _mapping(d, where)
        return cls(_str(m, "label", where), _number(m, "score", where), _strings(m, "reasons", where))

    def to_rasa(self) -> dict[str, Any]:
        return {"label": self.label, "score": self.score, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Parse:
    text: str
    intent: Intent
    entities: tuple[Entity, ...] = ()
    intent_ranking: tuple[Intent, ...] = ()  # best first, at most RANKING_LENGTH
    language: str = "zh"  # zh | zh-Hant | en | mixed
    script: Script = Script.HANS
    severity: SeverityAssessment = SeverityAssessment()
    sentiment: Sentiment = Sentiment()
    ambiguous: bool = False  # the top two intents are too close to call
    truncated: bool = False  # the text was cut to the classifier's limit

    @classmethod
    def from_rasa(cls, d: Mapping[str, Any]) -> Parse:
        """Decode the pipeline's (or a Rasa server's) parse dict; InputError names a bad field."""
        m = _mapping(d, "")
        text = _str(m, "text", "")
        return cls(
            text=text,
            intent=Intent.from_rasa(_get(m, "intent", ""), "intent"),
            entities=tuple(
                Entity.from_rasa(e, f"entities[{i}]", text) for i, e in enumerate(_list(m, "entities", ""))
            ),
            intent_ranking=tuple(
                Intent.from_rasa(r, f"intent_ranking[{i}]")
                for i, r in enumerate(_list(m, "intent_ranking", ""))
            ),
            language=_str(m, "language", ""),
            script=_enum(m, "script", Script, ""),
            severity=SeverityAssessment.from_rasa(_get(m, "severity", ""), "severity"),
            sentiment=Sentiment.from_rasa(_get(m, "sentiment", ""), "sentiment"),
            ambiguous=_bool(m, "ambiguous", ""),
            truncated=_bool(m, "truncated", ""),
        )

    def to_rasa(self) -> dict[str, Any]:
        """The wire shape, key for key what the pipeline returned (POST /model/parse)."""
        return {
            "text": self.text,
            "intent": self.intent.to_rasa(),
            "entities": [e.to_rasa() for e in self.entities],
            "intent_ranking": [r.to_rasa() for r in self.intent_ranking],
            "ambiguous": self.ambiguous,
            "language": self.language,
            "script": self.script.value,
            "severity": self.severity.to_rasa(),
            "sentiment": self.sentiment.to_rasa(),
            "truncated": self.truncated,
        }

    def summary(self) -> dict[str, Any]:
        """The ``parse`` field of the API's message result."""
        return {
            "intent": self.intent.name,
            "confidence": self.intent.confidence,
            "severity": self.severity.to_rasa(),
            "sentiment": self.sentiment.to_rasa(),
            "language": self.language,
            "ambiguous": self.ambiguous,
            "entities": [e.summary() for e in self.entities],
        }

    def with_intent(self, name: str, confidence: float = 1.0) -> Parse:
        """A copy with the intent forced (a button's ``/intent`` payload names it), no ambiguity, and a
        ranking of that intent alone: what the payload's literal text ranks second means nothing."""
        forced = Intent(name, confidence)
        return dataclasses.replace(self, intent=forced, intent_ranking=(forced,), ambiguous=False)


# ------------------------------------------------------------------ strict field readers
def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _mistyped(path: str, expected: str, value: Any) -> InputError:
    return InputError(f"parse field {path or '<parse>'!r} must be {expected}, got {type(value).__name__}")


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _mistyped(where, "an object", value)
    return value


def _get(m: Mapping[str, Any], key: str, where: str) -> Any:
    value = m.get(key, _MISSING)
    if value is _MISSING:
        raise InputError(f"parse field {_join(where, key)!r} is missing")
    return value


def _str(m: Mapping[str, Any], key: str, where: str, optional: bool = False) -> Any:
    value = m.get(key) if optional else _get(m, key, where)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _mistyped(_join(where, key), "a string", value)
    return value


def _number(m: Mapping[str, Any], key: str, where: str, optional: bool = False) -> Any:
    value = m.get(key) if optional else _get(m, key, where)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _mistyped(_join(where, key), "a number", value)
    return float(value)


def _int(m: Mapping[str, Any], key: str, where: str) -> int:
    value = _get(m, key, where)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _mistyped(_join(where, key), "an integer", value)
    return value


def _bool(m: Mapping[str, Any], key: str, where: str) -> bool:
    value = _get(m, key, where)
    if not isinstance(value, bool):
        raise _mistyped(_join(where, key), "true or false", value)
    return value


def _list(m: Mapping[str, Any], key: str, where: str) -> Sequence[Any]:
    value = _get(m, key, where)
    if not isinstance(value, list | tuple):
        raise _mistyped(_join(where, key), "a list", value)
    return value


def _strings(m: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = _list(m, key, where)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise _mistyped(f"{_join(where, key)}[{i}]", "a string", item)
    return tuple(items)


def _enum(m: Mapping[str, Any], key: str, kind: type[_E], where: str) -> _E:
    value = _str(m, key, where)
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InputError(
            f"parse field {_join(where, key)!r} must be one of {allowed}, got {value!r}"
        ) from None


class FrozenDict(dict[str, Any]):
    """A read-only dict: still a dict to ``json.dumps`` and ``==``, but any change raises TypeError."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a parse is frozen: copy the value with dict(...) to change it")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:  # copy, deepcopy and pickle rebuild it whole
        return (FrozenDict, (dict(self),))


def _freeze(value: Any) -> Any:
    """JSON objects and arrays become read-only dicts and tuples, so a frozen parse stays frozen."""
    if isinstance(value, Mapping):
        return FrozenDict({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value
