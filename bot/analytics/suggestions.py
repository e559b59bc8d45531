"""What ``triage gaps`` writes for a support engineer to accept: Rasa-YAML training examples (the nlu_data
format, loadable by :func:`bot.nlu.training_data.load_training_data`) and Markdown article stubs (the
kb_index format, valid for :func:`bot.kb.articles.parse_article`).

A cluster near an existing intent (``INTENT_NEAR`` or closer) suggests its texts as more examples of that
intent — the NLU missed them; one further away suggests a new intent ``gap_<lang>_<n>`` and an article stub,
as does any cluster whose nearest article is not close. Replies marked "make this an article" become stubs
whose steps are the agent's reply."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.analytics.gaps import Cluster, Gap
from bot.nlu.training_data import dump_rasa_yaml
from bot.vocabulary import INTENT_AREA

INTENT_NEAR = 0.45
ARTICLE_NEAR = 0.5
EXAMPLES = 20
_NUMBER = re.compile(r"^[0-9]+[.、)]\s*")  # an agent's own numbering, replaced by the stub's

_HEADINGS = {
    "zh": ("症状", "解决步骤", "待补充：根据上面用户的问题写出处理步骤。"),
    "en": ("Symptoms", "Steps to fix", "To be written: the steps that solve the questions above."),
}


@dataclass(frozen=True)
class Written:
    nlu_file: Path | None
    articles: list[Path]


def intent_for(c: Cluster, number: int) -> str:
    """The intent a cluster's texts are suggested for."""
    if c.intent is not None and c.intent.score >= INTENT_NEAR:
        return c.intent.name
    return f"gap_{c.language}_{number}"


def write_suggestions(
    clusters: list[Cluster], candidates: list[Gap], out: Path, today: dt.date, min_size: int = 2
) -> Written:
    """Write ``out/nlu/gaps.yml`` and ``out/articles/<lang>/<id>.md`` for the clusters of at least
    ``min_size`` and every article candidate."""
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    articles: list[Path] = []
    for number, c in enumerate((c for c in clusters if c.size >= min_size), 1):
        intent = intent_for(c, number)
        for text in c.examples[:EXAMPLES]:
            key = " ".join(text.split()).lower()
            if key and key not in seen and not key.startswith("/"):
                seen.add(key)
                pairs.append((text, intent))
        if intent.startswith("gap_") or c.article is None or c.article.score < ARTICLE_NEAR:
            steps = [g.reply for g in c.gaps if g.reply][:1]
            articles.append(
                _stub(out, f"{c.language}-gap-{number}", c.language, c.examples, intent, steps, today)
            )
    for number, gap in enumerate(candidates, 1):
        language = gap.language if gap.language in _HEADINGS else "zh"
        questions = [gap.text] if gap.text else []
        intent = gap.intent or "gap_article"
        articles.append(
            _stub(out, f"{language}-agent-reply-{number}", language, questions, intent, [gap.reply], today)
        )
    nlu_file = None
    if pairs:
        nlu_file = out / "nlu" / "gaps.yml"
        nlu_file.parent.mkdir(parents=True, exist_ok=True)
        header = (
            "# Suggested by `triage gaps`: review, move each example to its intent in nlu_data/, retrain.\n"
        )
        nlu_file.write_text(header + dump_rasa_yaml(pairs), encoding="utf-8")
    return Written(nlu_file, articles)


def _stub(
    out: Path,
    article_id: str,
    language: str,
    questions: list[str],
    intent: str,
    steps: list[str],
    today: dt.date,
) -> Path:
    symptoms, steps_heading, todo = _HEADINGS.get(language, _HEADINGS["zh"])
    title = " ".join((questions[0] if questions else article_id).split())[:60]
    asked = [" ".join(q.split()) for q in questions[:8]]
    meta: dict[str, Any] = {
        "id": article_id,
        "title": title,
        "lang": language,
        "kind": "article",
        "intents": [intent],
        "tags": _tags(questions),
        "questions": asked,
        "product_area": INTENT_AREA.get(intent, "service"),
        "severity_hint": "normal",
        "updated": today.isoformat(),
        "translations": None,
    }
    lines = [line.strip() for step in steps for line in step.splitlines() if line.strip()]
    numbered = [f"{i}. {_NUMBER.sub('', line)}" for i, line in enumerate(lines, 1)]
    body = [f"## {symptoms}", *(f"- {q}" for q in asked), "", f"## {steps_heading}"]
    body += numbered or [f"1. {todo}"]
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False).strip()
    path = out / "articles" / language / f"{article_id}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{front}\n---\n" + "\n".join(body) + "\n", encoding="utf-8")
    return path


def _tags(questions: list[str]) -> list[str]:
    """A few frequent words (English) or two-character runs (Chinese) of the questions."""
    words: dict[str, int] = {}
    for q in questions:
        for w in re.findall(r"[A-Za-z]{4,}|[\u4e00-\u9fff]{2}", q.lower()):
            words[w] = words.get(w, 0) + 1
    ranked = sorted(words, key=lambda w: -words[w])[:3]
    return ranked or ["gap"]
