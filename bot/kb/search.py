"""Search over the knowledge base: BM25 with field, intent and language preferences, snippets with the
matched terms marked, and a live reload when the articles change."""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.kb.articles import Article
from bot.kb.config import KBConfig
from bot.kb.index import KBIndex, fingerprint, load_or_build
from bot.nlu.language import detect_language
from bot.nlu.normalize import Normalized, normalize

logger = logging.getLogger(__name__)

MAX_QUERY_CHARS = 1000  # longer queries are searched by their start: a pasted log is not a question
SNIPPET_CHARS = 120


@dataclass(frozen=True)
class Hit:
    article: Article
    score: float
    confidence: float  # the share of the query's information the article matched, 0..1
    snippet: str
    other_language: bool = False  # only the other language has this article

    def to_dict(self) -> dict[str, Any]:
        a = self.article
        return {
            "id": a.id,
            "title": a.title,
            "lang": a.lang,
            "intents": list(a.intents),
            "kind": a.kind,
            "score": round(self.score, 4),
            "confidence": round(self.confidence, 4),
            "snippet": self.snippet,
            "other_language": self.other_language,
        }


@dataclass
class SearchResult:
    query: str
    lang: str
    terms: list[str]
    hits: list[Hit] = field(default_factory=list)


def query_language(text: str) -> str:
    return "en" if detect_language(text).language == "en" else "zh"


def search_index(
    index: KBIndex,
    query: str,
    lang: str | None = None,
    top: int = 5,
    intent: str | None = None,
    snippets: bool = True,
) -> SearchResult:
    """Rank articles for ``query``; ``lang`` defaults to the query's own language. Snippets cost more than
    the ranking itself, so callers that only need ids can skip them."""
    query = query[:MAX_QUERY_CHARS]
    lang = lang or query_language(query)
    # A repeated word adds no information; both backends then score the same set of terms.
    terms = list(dict.fromkeys(index.analyzer.terms(query)))
    result = SearchResult(query, lang, terms)
    if not terms or top <= 0:
        return result
    scores = index.bm25.scores(terms).astype(np.float64)
    if intent and intent in index.intent_masks:
        scores = scores * (1.0 + index.config.intent_boost * index.intent_masks[intent])
    own = index.lang == lang
    eligible = own | ~index.has_translation
    if not (scores[own] > 0).any():
        eligible = np.ones_like(own)  # nothing in the user's language: the other language, marked as such
    ranked = np.where(eligible, np.where(own, scores, scores * index.config.other_language_penalty), 0.0)
    k = min(top, int((ranked > 0).sum()))
    if k == 0:
        return result
    candidates = np.argpartition(-ranked, k - 1)[:k]
    order = candidates[np.argsort(-ranked[candidates], kind="stable")]
    upper = index.bm25.upper_bound(terms) or 1.0
    for i in order:
        article = index.articles[int(i)]
        result.hits.append(
            Hit(
                article,
                float(ranked[i]),
                min(1.0, float(scores[i]) / upper),
                snippet(article, terms) if snippets else "",
                bool(not own[i]),
            )
        )
    return result


@functools.lru_cache(maxsize=4096)
def _lines(article: Article) -> tuple[tuple[str, Normalized], ...]:
    """The body's lines without Markdown markers, each with its normalised form (cached per article)."""
    lines = []
    for raw in article.body.splitlines():
        line = re.sub(r"^\s*(?:#+|\d+[.)、]|[-*])\s*", "", raw).replace("**", "").strip()
        if line:
            lines.append((line, normalize(line)))
    return tuple(lines) or ((article.title, normalize(article.title)),)


def snippet(article: Article, terms: Sequence[str]) -> str:
    """The body line that matches most query terms, with each match wrapped in ``**``."""
    lines = _lines(article)
    words = sorted({t for t in terms if not t.startswith("#") and len(t) >= 2}, key=len, reverse=True)
    if not words:
        return lines[0][0][:SNIPPET_CHARS]
    pattern = re.compile("|".join(re.escape(w) + (r"[a-z]*" if w.isascii() else "") for w in words))
    best, norm = max(lines, key=lambda item: len(set(pattern.findall(item[1].text))))
    matches = list(pattern.finditer(norm.text))
    start = max(0, norm.span_to_original(*matches[0].span())[0] - 30) if matches else 0
    out, pos = [], start
    for m in matches:
        s, e = norm.span_to_original(*m.span())
        if s < pos or e - start > SNIPPET_CHARS:
            continue
        out.append(best[pos:s] + "**" + best[s:e] + "**")
        pos = e
    tail_room = max(0, SNIPPET_CHARS - (pos - start))
    out.append(best[pos : pos + tail_room])
    text = "".join(out).replace("****", "")  # adjacent matches read as one
    return ("…" if start else "") + text + ("…" if pos + tail_room < len(best) else "")


class KnowledgeBase:
    """The loaded index, reloaded (rebuilt if needed) when the article files change.

    Safe to call from several threads at once (the app runs ``search`` in its CPU pool): a rebuild builds
    the new index completely and then replaces the one ``self.index`` reference, and every reader takes that
    reference once, so a search sees the old index or the new one, never a mixture. While one thread
    rebuilds, searches in the others carry on with the old index instead of waiting for the rebuild.
    """

    def __init__(
        self,
        articles_dir: Path,
        index_dir: Path,
        config_path: Path,
        synonyms: dict[str, str],
        known_intents: Sequence[str] | None = None,
        check_interval: float = 2.0,
    ) -> None:
        self.articles_dir, self.index_dir, self.config_path = articles_dir, index_dir, config_path
        self.synonyms, self.known_intents = synonyms, list(known_intents) if known_intents else None
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._checked_at = 0.0
        self._signature = self._stat_signature()
        self.index, self.rebuilt = load_or_build(
            articles_dir, index_dir, KBConfig.from_file(config_path), synonyms, self.known_intents
        )

    def _stat_signature(self) -> tuple[tuple[str, int, int], ...]:
        files = [*sorted(self.articles_dir.rglob("*.md")), self.config_path]
        return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files if p.exists())

    def reload_if_changed(self, force_check: bool = False) -> bool:
        """Cheap when nothing changed (a stat per file, at most every ``check_interval`` seconds).
        On a change the index is rebuilt and swapped in; a broken article keeps the old index serving.
        CPU-heavy on a change: call it (or ``search``) off the event loop. Returns False straight away when
        another thread is already checking or rebuilding, unless ``force_check`` (then it waits its turn)."""
        now = time.monotonic()
        if not force_check and now - self._checked_at < self.check_interval:
            return False
        if not self._lock.acquire(blocking=force_check):
            return False
        try:
            self._checked_at = now
            # Files may be written (or deleted) while we look: any failure here keeps the old index serving
            # rather than failing the search that happened to trigger the check.
            try:
                signature = self._stat_signature()
                if signature == self._signature:
                    return False
                config = KBConfig.from_file(self.config_path)
                if fingerprint(self.articles_dir, config, self.synonyms) == self.index.meta.get(
                    "fingerprint"
                ):
                    self._signature = signature
                    return False
                index, _ = load_or_build(
                    self.articles_dir, self.index_dir, config, self.synonyms, self.known_intents
                )
            except Exception:
                logger.exception(
                    "knowledge base changed but could not be rebuilt; still serving the old index"
                )
                return False
            self.index = index  # the one swap: fully built before any reader can see it
            self._signature = signature
            logger.info("knowledge base reloaded: %d articles", len(index.articles))
            return True
        finally:
            self._lock.release()

    def search(
        self, query: str, lang: str | None = None, top: int = 5, intent: str | None = None
    ) -> SearchResult:
        """Rank articles for ``query`` (reloading first if the files changed). CPU-bound: the app calls it
        through its CPU pool, ``await cpu.run(kb.search, query, ...)``, never on the event loop."""
        self.reload_if_changed()
        return search_index(self.index, query, lang, top, intent)

    def article(self, article_id: str) -> Article | None:
        index = self.index  # one read: a concurrent reload must not pair one index's ids with another's list
        i = index.by_id.get(article_id)
        return index.articles[i] if i is not None else None
