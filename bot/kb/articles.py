"""Knowledge-base articles: Markdown with YAML front matter, validated strictly.

Every problem names the file and, where it can, the line — and all problems are reported at once so a
support engineer can fix a batch of articles in one pass.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.errors import DataError
from bot.vocabulary import GROUPS, Severity

LANGUAGES = tuple(g.value for g in GROUPS)
KINDS = ("article", "faq")
SEVERITIES = tuple(s.value for s in reversed(Severity))
PRODUCT_AREAS = (
    "invoice",
    "account",
    "expense",
    "approval",
    "payment",
    "export",
    "integration",
    "platform",
    "policy",
    "service",
)
REQUIRED = (
    "id",
    "title",
    "lang",
    "kind",
    "intents",
    "tags",
    "product_area",
    "severity_hint",
    "updated",
    "translations",
)
_ID = re.compile(r"^(zh|en)-[a-z0-9][a-z0-9\-]*$")
_FRONT = re.compile(r"\A---\s*\n(?P<yaml>.*?)\n---\s*\n?(?P<body>.*)\Z", re.S)
# Section headings that hold the fix steps, in both languages.
STEP_HEADINGS = ("解决步骤", "解决方法", "处理步骤", "steps to fix", "how to fix", "steps")


class ArticleErrors(DataError):
    """All the problems found in a set of articles."""

    def __init__(self, errors: list[DataError]) -> None:
        first = errors[0]
        super().__init__(first.path, first.line, first.reason)
        self.errors = errors

    def __str__(self) -> str:
        lines = [str(e) for e in self.errors]
        return f"{len(lines)} problem(s) in the knowledge base:\n  " + "\n  ".join(lines)


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    lang: str
    kind: str
    intents: tuple[str, ...]
    tags: tuple[str, ...]
    product_area: str
    severity_hint: str
    updated: str
    translations: str | None
    body: str
    path: str = ""
    sections: dict[str, str] = field(default_factory=dict, compare=False)
    questions: tuple[str, ...] = ()  # how users ask about it; searched like a boosted field

    @property
    def steps(self) -> list[str]:
        """The numbered fix steps (or, for an FAQ, the answer's lines)."""
        for heading, text in self.sections.items():
            if heading.lower() in STEP_HEADINGS:
                return _list_items(text)
        return _list_items(self.body) or [line for line in self.body.splitlines() if line.strip()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "lang": self.lang,
            "kind": self.kind,
            "intents": list(self.intents),
            "tags": list(self.tags),
            "product_area": self.product_area,
            "severity_hint": self.severity_hint,
            "updated": self.updated,
            "translations": self.translations,
            "body": self.body,
            "path": self.path,
            "questions": list(self.questions),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Article:
        return cls(
            raw["id"],
            raw["title"],
            raw["lang"],
            raw["kind"],
            tuple(raw["intents"]),
            tuple(raw["tags"]),
            raw["product_area"],
            raw["severity_hint"],
            raw["updated"],
            raw["translations"],
            raw["body"],
            raw.get("path", ""),
            split_sections(raw["body"]),
            tuple(raw.get("questions", ())),
        )


def _list_items(text: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^\s*(?:\d+[.)、]|[-*])\s+(.+)$", text, re.M)]


def split_sections(body: str) -> dict[str, str]:
    """``## Heading`` → its text."""
    sections: dict[str, str] = {}
    current = None
    for line in body.splitlines():
        heading = re.match(r"^#{2,3}\s+(.+?)\s*$", line)
        if heading:
            current = heading.group(1)
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return {k: v.strip() for k, v in sections.items()}


def _line_of(text: str, key: str) -> int | None:
    match = re.search(rf"^{re.escape(key)}\s*:", text, re.M)
    return text.count("\n", 0, match.start()) + 1 if match else None


def parse_article(
    path: Path, known_intents: Iterable[str] | None = None
) -> tuple[Article | None, list[DataError]]:
    """Parse and validate one article file; returns the article (if readable) and its problems."""
    errors: list[DataError] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [DataError(path, None, f"cannot read as UTF-8 text: {exc}")]
    match = _FRONT.match(text)
    if not match:
        return None, [
            DataError(path, 1, "no YAML front matter: the file must start with '---', the fields, '---'")
        ]
    try:
        meta = yaml.safe_load(match.group("yaml"))
    except yaml.YAMLError as exc:
        line = (
            exc.problem_mark.line + 2 if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark else None
        )
        return None, [DataError(path, line, f"invalid front matter YAML: {exc}")]
    if not isinstance(meta, dict):
        return None, [DataError(path, 2, "front matter must be a mapping of fields")]

    def err(key: str, reason: str) -> None:
        errors.append(DataError(path, _line_of(text, key), reason))

    for key in REQUIRED:
        if meta.get(key) in (None, "", []) and not (key == "translations" and key in meta):
            err(key, f"missing required field {key!r}")
    if errors:
        return None, errors
    article_id = str(meta["id"])
    lang = str(meta["lang"])
    if not _ID.match(article_id):
        err("id", f"id {article_id!r} must look like zh-some-slug or en-some-slug")
    if lang not in LANGUAGES:
        err("lang", f"lang {lang!r} must be one of {LANGUAGES}")
    elif not article_id.startswith(f"{lang}-"):
        err("id", f"id {article_id!r} must start with its language, '{lang}-'")
    if path.parent.name in LANGUAGES and path.parent.name != lang:
        err("lang", f"lang {lang!r} does not match the folder {path.parent.name!r}")
    if meta["kind"] not in KINDS:
        err("kind", f"kind {meta['kind']!r} must be one of {KINDS}")
    if meta["severity_hint"] not in SEVERITIES:
        err("severity_hint", f"severity_hint {meta['severity_hint']!r} must be one of {SEVERITIES}")
    if meta["product_area"] not in PRODUCT_AREAS:
        err("product_area", f"product_area {meta['product_area']!r} must be one of {PRODUCT_AREAS}")
    intents = meta["intents"] if isinstance(meta["intents"], list) else [meta["intents"]]
    tags = meta["tags"] if isinstance(meta["tags"], list) else [meta["tags"]]
    if known_intents is not None:
        known = set(known_intents)
        for intent in intents:
            if intent not in known:
                err(
                    "intents",
                    f"unknown intent {intent!r}; use names from nlu_data/ (e.g. {sorted(known)[:3]})",
                )
    updated = meta["updated"]
    if not isinstance(updated, dt.date):
        try:
            dt.date.fromisoformat(str(updated))
        except ValueError:
            err("updated", f"updated {updated!r} must be a date, YYYY-MM-DD")
    questions = meta.get("questions", [])
    if not isinstance(questions, list) or not all(isinstance(q, str) and q.strip() for q in questions):
        err("questions", "questions must be a list of non-empty strings")
        questions = []
    body = match.group("body").strip()
    if not body:
        errors.append(DataError(path, None, "the article has no body"))
    if errors:
        return None, errors
    translations = meta.get("translations")
    article = Article(
        article_id,
        str(meta["title"]).strip(),
        lang,
        str(meta["kind"]),
        tuple(map(str, intents)),
        tuple(str(t) for t in tags),
        str(meta["product_area"]),
        str(meta["severity_hint"]),
        str(updated),
        str(translations) if translations else None,
        body,
        str(path),
        split_sections(body),
        tuple(q.strip() for q in questions),
    )
    return article, []


def load_articles(root: Path, known_intents: Iterable[str] | None = None) -> list[Article]:
    """Every ``*.md`` under ``root`` (recursively), validated together; raises :class:`ArticleErrors`."""
    if not root.is_dir():
        raise DataError(root, None, "no such folder of articles")
    known = list(known_intents) if known_intents is not None else None
    articles: list[Article] = []
    errors: list[DataError] = []
    for path in sorted(root.rglob("*.md")):
        article, problems = parse_article(path, known)
        errors.extend(problems)
        if article:
            articles.append(article)
    by_id: dict[str, Article] = {}
    for article in articles:
        if article.id in by_id:
            errors.append(
                DataError(article.path, 2, f"duplicate id {article.id!r} (also in {by_id[article.id].path})")
            )
        by_id[article.id] = article
    for article in articles:
        other = by_id.get(article.translations) if article.translations else None
        if article.translations and other is None:
            errors.append(
                DataError(
                    article.path,
                    None,
                    f"translations points to {article.translations!r}, which does not exist",
                )
            )
        elif other is not None and (other.lang == article.lang or other.translations != article.id):
            errors.append(
                DataError(
                    article.path,
                    None,
                    f"translation {other.id!r} must be in the other language "
                    f"and point back to {article.id!r}",
                )
            )
    if errors:
        raise ArticleErrors(errors)
    if not articles:
        raise DataError(root, None, "no articles (*.md) found")
    return articles
