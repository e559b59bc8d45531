"""The knowledge-base index: articles + their BM25 matrix, saved as a fingerprinted directory next to the
NLU model and rebuilt only when articles, synonyms or settings change."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.artifact import replace_directory
from bot.errors import ModelNotFoundError
from bot.kb.analyzer import Analyzer
from bot.kb.articles import Article, load_articles
from bot.kb.bm25 import BACKENDS, BM25, load_backend
from bot.kb.config import KBConfig

logger = logging.getLogger(__name__)
META_FILE = "index.json"


def document_terms(article: Article, analyzer: Analyzer, config: KBConfig) -> list[str]:
    """Field boosts by repetition: a title term counts ``fields.title`` times."""
    weights = config.fields
    title = analyzer.terms(article.title) * weights.title
    tags = analyzer.terms(" ".join(article.tags)) * weights.tags
    questions = analyzer.terms("\n".join(article.questions)) * weights.questions
    body = analyzer.terms(article.body) * weights.body
    return title + tags + questions + body


def _analyse_chunk(args: tuple[list[Article], KBConfig, dict[str, str]]) -> list[list[str]]:
    articles, config, synonyms = args
    analyzer = Analyzer(synonyms, config.chinese_bigrams)
    return [document_terms(a, analyzer, config) for a in articles]


PARALLEL_FROM = 2000  # below this, starting worker processes costs more than it saves


def analyse(
    articles: Sequence[Article],
    config: KBConfig,
    synonyms: dict[str, str],
    progress: Callable[[str], None] | None = None,
    chunk: int = 1000,
) -> list[list[str]]:
    """Search terms of every article; large sets are analysed on all cores."""
    chunks = [(list(articles[i : i + chunk]), config, synonyms) for i in range(0, len(articles), chunk)]
    if len(articles) < PARALLEL_FROM:
        return [terms for c in chunks for terms in _analyse_chunk(c)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    docs: list[list[str]] = []
    # fork would copy the parent's threads (spaCy, BLAS) into the workers; spawn starts clean.
    with ProcessPoolExecutor(mp_context=multiprocessing.get_context("spawn")) as pool:
        for i, terms in enumerate(pool.map(_analyse_chunk, chunks), 1):
            docs.extend(terms)
            if progress:
                progress(f"analysed {len(docs):,}/{len(articles):,} articles ({i}/{len(chunks)} chunks)")
    return docs


def fingerprint(articles_dir: Path, config: KBConfig, synonyms: dict[str, str]) -> str:
    digest = hashlib.sha256(config.model_dump_json().encode())
    digest.update(json.dumps(synonyms, sort_keys=True, ensure_ascii=False).encode())
    for path in sorted(articles_dir.rglob("*.md")):
        digest.update(str(path.relative_to(articles_dir)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class KBIndex:
    articles: list[Article]
    bm25: BM25
    analyzer: Analyzer
    config: KBConfig
    meta: dict[str, Any]

    def __post_init__(self) -> None:
        self.by_id = {a.id: i for i, a in enumerate(self.articles)}
        self.lang = np.array([a.lang for a in self.articles])
        # An article in the other language is shown only when the user's language has no version of it.
        self.has_translation = np.array([a.translations in self.by_id for a in self.articles], dtype=bool)
        self.intent_masks: dict[str, np.ndarray] = {}
        for i, article in enumerate(self.articles):
            for intent in article.intents:
                self.intent_masks.setdefault(intent, np.zeros(len(self.articles), dtype=bool))[i] = True

    @classmethod
    def build(
        cls,
        articles: Sequence[Article],
        config: KBConfig,
        synonyms: dict[str, str],
        fingerprint_value: str = "",
        progress: Callable[[str], None] | None = None,
        docs: Sequence[Sequence[str]] | None = None,
    ) -> KBIndex:
        """Index ``articles``; ``docs`` (their terms, from :func:`analyse`) skips the analysis step."""
        started = time.perf_counter()
        analyzer = Analyzer(synonyms, config.chinese_bigrams)
        if docs is None:
            docs = analyse(articles, config, synonyms, progress)
        if progress:
            progress("building the BM25 matrix")
        bm25 = BACKENDS[config.bm25.backend].build(docs, config.bm25.k1, config.bm25.b)
        meta = {
            "fingerprint": fingerprint_value,
            "articles": len(articles),
            "build_seconds": round(time.perf_counter() - started, 3),
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        return cls(list(articles), bm25, analyzer, config, meta)

    def save(self, directory: Path) -> None:
        """Write next to ``directory`` and swap it in, so a reader never sees half an index."""
        with replace_directory(directory) as tmp:
            self.bm25.save(tmp / "bm25")
            (tmp / "articles.json").write_text(
                json.dumps([a.to_dict() for a in self.articles], ensure_ascii=False), encoding="utf-8"
            )
            meta = {**self.meta, "config": self.config.model_dump(), "synonyms": dict(self.analyzer.synonyms)}
            (tmp / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> KBIndex:
        if not (directory / META_FILE).exists():
            raise ModelNotFoundError(directory)
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        config = KBConfig.model_validate(meta.pop("config"))
        analyzer = Analyzer(meta.pop("synonyms"), config.chinese_bigrams)
        articles = [
            Article.from_dict(raw) for raw in json.loads((directory / "articles.json").read_text("utf-8"))
        ]
        return cls(articles, load_backend(directory / "bm25"), analyzer, config, meta)


def stored_fingerprint(directory: Path) -> str | None:
    try:
        return str(json.loads((directory / META_FILE).read_text(encoding="utf-8"))["fingerprint"])
    except (OSError, ValueError, KeyError):
        return None


def load_or_build(
    articles_dir: Path,
    index_dir: Path,
    config: KBConfig,
    synonyms: dict[str, str],
    known_intents: Sequence[str] | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[KBIndex, bool]:
    """The saved index when its fingerprint matches the articles; a fresh build (saved) otherwise."""
    current = fingerprint(articles_dir, config, synonyms)
    if not force and stored_fingerprint(index_dir) == current:
        return KBIndex.load(index_dir), False
    articles = load_articles(articles_dir, known_intents)
    index = KBIndex.build(articles, config, synonyms, current, progress)
    index.save(index_dir)
    return index, True
