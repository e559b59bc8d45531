"""Answer composition: from a parse and the search hits, an answer the bot can stand behind — or an
honest "no confident answer" with the reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.kb.config import AnswerConfig
from bot.kb.search import Hit, SearchResult

NO_QUERY = "no_query"  # nothing searchable in the message
NO_MATCH = "no_match"  # no article shares a term with it
LOW_CONFIDENCE = "low_confidence"  # the best article matches too little of it


@dataclass(frozen=True)
class Answer:
    article_id: str
    title: str
    lang: str
    steps: list[str]
    link: str
    confidence: float
    snippet: str
    other_language: bool = False
    alternatives: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answered": True,
            "article_id": self.article_id,
            "title": self.title,
            "lang": self.lang,
            "steps": self.steps,
            "link": self.link,
            "confidence": round(self.confidence, 4),
            "snippet": self.snippet,
            "other_language": self.other_language,
            "alternatives": self.alternatives,
        }


@dataclass(frozen=True)
class NoAnswer:
    reason: str
    detail: str
    best: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"answered": False, "reason": self.reason, "detail": self.detail, "best": self.best}


def answer_confidence(hit: Hit, intent: str | None, config: AnswerConfig) -> float:
    bonus = config.intent_bonus if intent and intent in hit.article.intents else 0.0
    return min(1.0, hit.confidence + bonus)


def compose_answer(
    parse: dict[str, Any] | None, result: SearchResult, config: AnswerConfig
) -> Answer | NoAnswer:
    """Answer with the best hit when its confidence reaches ``config.threshold``."""
    if not result.terms:
        return NoAnswer(NO_QUERY, "the message has no searchable words")
    if not result.hits:
        return NoAnswer(NO_MATCH, "no article shares a word with the message")
    intent = (parse or {}).get("intent", {}).get("name")
    best = result.hits[0]
    confidence = answer_confidence(best, intent, config)
    if confidence < config.threshold:
        return NoAnswer(
            LOW_CONFIDENCE,
            f"best article {best.article.id} has confidence {confidence:.2f} "
            f"< threshold {config.threshold:.2f}",
            {**best.to_dict(), "confidence": round(confidence, 4)},
        )
    article = best.article
    return Answer(
        article.id,
        article.title,
        article.lang,
        article.steps,
        f"/kb/{article.id}",
        confidence,
        best.snippet,
        best.other_language,
        [{"id": h.article.id, "title": h.article.title} for h in result.hits[1:3]],
    )
