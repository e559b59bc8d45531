"""The state one message accumulates as it passes through the NLU pipeline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.nlu.language import LanguageGuess
from bot.nlu.normalize import Normalized
from bot.nlu.tokenize import Token

FALLBACK_INTENT = "nlu_fallback"
RANKING_LENGTH = 10


@dataclass
class ParseState:
    text: str
    today: dt.date
    norm: Normalized | None = None
    language: LanguageGuess | None = None
    tokens: list[Token] = field(default_factory=list)
    focus: int = 0  # where in the normalised text the request starts (bot/nlu/focus.py); 0: all of it
    embedding: Any = None  # the sentence vector (numpy) when the pipeline has an embedding featurizer
    # At parse time the featurizer leaves the encoder's call here instead of running it: the classifier's
    # sparse gate may answer without the vector (sentence_vector() runs it when it is needed).
    encode: Callable[[], Any] | None = None
    ranking: list[tuple[str, float]] = field(default_factory=list)
    raw_confidence: float = 0.0  # the top intent's confidence before calibration (reliability diagrams)
    intent: str = FALLBACK_INTENT
    confidence: float = 0.0
    ambiguous: bool = False
    truncated: bool = False
    entities: list[dict[str, Any]] = field(default_factory=list)
    severity: dict[str, Any] = field(default_factory=lambda: {"level": "normal", "reasons": []})
    sentiment: dict[str, Any] = field(
        default_factory=lambda: {"label": "neutral", "score": 0.0, "reasons": []}
    )

    def sentence_vector(self) -> Any:
        """The sentence vector, encoded on first use; None without an embedding featurizer."""
        if self.embedding is None and self.encode is not None:
            self.embedding, self.encode = self.encode(), None
        return self.embedding

    @property
    def normalized_text(self) -> str:
        return self.norm.text if self.norm else self.text

    @property
    def lemmas(self) -> list[str]:
        return [t.lemma for t in self.tokens]

    @property
    def request_text(self) -> str:
        """The normalised text the intent is read from: after "不是X的问题，是" when the message opens so."""
        return self.normalized_text[self.focus :]

    @property
    def request_lemmas(self) -> list[str]:
        return [t.lemma for t in self.tokens if t.start >= self.focus]

    def to_parse(self) -> dict[str, Any]:
        """Rasa's parse shape, plus language, severity, sentiment and the ambiguity flag."""
        return {
            "text": self.text,
            "intent": {"name": self.intent, "confidence": round(self.confidence, 4)},
            "entities": self.entities,
            "intent_ranking": [
                {"name": n, "confidence": round(c, 4)} for n, c in self.ranking[:RANKING_LENGTH]
            ],
            "ambiguous": self.ambiguous,
            "language": self.language.language if self.language else "zh",
            "script": self.language.script if self.language else "Hans",
            "severity": self.severity,
            "sentiment": self.sentiment,
            "truncated": self.truncated,
        }
