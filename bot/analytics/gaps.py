"""The knowledge-gap log read back and clustered: what the bot could not answer, grouped by topic.

Texts are clustered per language with TF-IDF over character n-grams (they work for Chinese without a word
segmenter, and for English) and scikit-learn's agglomerative clustering with a cosine distance threshold,
so the number of topics is found rather than chosen. Each cluster is put beside the nearest existing intent
(the centroid of its nlu_data examples in the same vector space) and the nearest KB article (the KB's own
search). Replies agents marked "make this an article" are article candidates of their own.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.store.keys import Keys

DISTANCE = 0.9  # cosine distance under which two groups of texts merge (average linkage)
READ_MAX = 5_000  # gap entries read for one clustering (the newest): n² distances
ARTICLE = "article"


@dataclass(frozen=True)
class Gap:
    """One entry of the gap log."""

    kind: str  # fallback | not_helpful | handoff | article
    text: str  # what the user asked (masked)
    at: int  # ms
    conversation_id: str = ""
    seq: int = 0
    channel: str = ""
    language: str = "zh"
    intent: str = ""
    reply: str = ""  # the agent's reply (handoff, article), masked
    agent: str = ""

    @classmethod
    def from_entry(cls, fields: dict[str, str]) -> Gap:
        return cls(
            kind=fields.get("kind", "fallback"),
            text=fields.get("text", ""),
            at=int(fields.get("at") or 0),
            conversation_id=fields.get("cid", ""),
            seq=int(fields.get("seq") or 0),
            channel=fields.get("channel", ""),
            language=fields.get("language", "zh"),
            intent=fields.get("intent", ""),
            reply=fields.get("reply", ""),
            agent=fields.get("agent", ""),
        )


@dataclass(frozen=True)
class Nearest:
    """An existing intent or article and how close it is (0..1)."""

    name: str
    score: float
    title: str = ""


@dataclass
class Cluster:
    language: str
    gaps: list[Gap]
    intent: Nearest | None = None
    article: Nearest | None = None
    kinds: dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.gaps)

    @property
    def examples(self) -> list[str]:
        """Distinct texts, most frequent first."""
        return [text for text, _ in Counter(g.text for g in self.gaps if g.text).most_common()]

    def to_dict(self, examples: int = 5) -> dict[str, Any]:
        return {
            "size": self.size,
            "language": self.language,
            "kinds": self.kinds,
            "examples": self.examples[:examples],
            "intent": _nearest(self.intent),
            "article": _nearest(self.article),
        }


def _nearest(found: Nearest | None) -> dict[str, Any] | None:
    return (
        None if found is None else {"name": found.name, "score": round(found.score, 3), "title": found.title}
    )


async def read_gaps(
    redis: Any, keys: Keys, since_ms: int, until_ms: int | None = None, limit: int = READ_MAX
) -> list[Gap]:
    """The gap log from ``since_ms`` (to ``until_ms``), oldest first: at most the newest ``limit``."""
    entries = await redis.xrevrange(
        keys.gaps, max=str(until_ms) if until_ms is not None else "+", min=str(since_ms), count=limit
    )
    return [Gap.from_entry(fields) for _, fields in reversed(entries)]


def _normalise(text: str) -> str:
    # Masked digits and ids ("****1234") say nothing about the topic.
    return re.sub(r"[\d*]+", " ", text.lower())


def _chinese(text: str) -> str:
    return re.sub(r"[\W\d_]+", "", text.lower())


def _vectorizer(language: str) -> Any:
    """Chinese: characters and character pairs (no segmenter needed); English: character 3–5-grams within
    words, which match inflections ("disconnect", "disconnecting") that whole words miss."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if language == "en":
        return TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, preprocessor=_normalise
        )
    return TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True, preprocessor=_chinese)


def cluster_texts(texts: Sequence[str], language: str, distance: float = DISTANCE) -> list[int]:
    """A cluster label per text (agglomerative, cosine distance, average linkage)."""
    if len(texts) < 2:
        return [0] * len(texts)
    from sklearn.cluster import AgglomerativeClustering

    # Distances from the sparse vectors (rows are L2-normalised): n² floats, never n × vocabulary.
    vectors = _vectorizer(language).fit_transform(texts)
    distances = 1.0 - (vectors @ vectors.T).toarray().astype("float32")
    distances.clip(0.0, 2.0, out=distances)
    model = AgglomerativeClustering(
        n_clusters=None, distance_threshold=distance, metric="precomputed", linkage="average"
    )
    return [int(label) for label in model.fit_predict(distances)]


def cluster(
    gaps: Iterable[Gap],
    examples: Sequence[tuple[str, str]] = (),
    search: Callable[[str, str], Nearest | None] | None = None,
    distance: float = DISTANCE,
) -> list[Cluster]:
    """The gaps (article candidates left out) clustered per language, largest first, each with its
    nearest intent among ``examples`` (text, intent) and its nearest article by ``search(text, lang)``."""
    by_language: dict[str, list[Gap]] = {}
    for gap in gaps:
        if gap.kind != ARTICLE and gap.text.strip():
            by_language.setdefault(gap.language, []).append(gap)
    clusters: list[Cluster] = []
    for language, group in sorted(by_language.items()):
        labels = cluster_texts([g.text for g in group], language, distance)
        members: dict[int, list[Gap]] = {}
        for label, gap in zip(labels, group, strict=True):
            members.setdefault(label, []).append(gap)
        clusters += [Cluster(language, m, kinds=dict(Counter(g.kind for g in m))) for m in members.values()]
    clusters.sort(key=lambda c: (-c.size, c.language, c.examples[:1]))
    for language in by_language:
        mine = [c for c in clusters if c.language == language]
        found = nearest_intents([c.examples[:10] for c in mine], examples, language)
        for c, intent in zip(mine, found, strict=True):
            c.intent = intent
    for c in clusters:
        if search is not None:
            c.article = search(" ".join(c.examples[:3]), c.language)
    return clusters


def nearest_intents(
    groups: Sequence[Sequence[str]], examples: Sequence[tuple[str, str]], language: str = "zh"
) -> list[Nearest | None]:
    """For each group of texts, the intent whose training examples are nearest: per intent, the mean over
    the texts of their best cosine similarity to one of its examples."""
    if not groups or not examples:
        return [None] * len(groups)
    import numpy as np

    names = sorted({intent for _, intent in examples})
    rows = np.array([names.index(intent) for _, intent in examples])
    texts = [text for group in groups for text in group]
    vectorizer = _vectorizer(language).fit([text for text, _ in examples] + texts)
    matrix = vectorizer.transform([text for text, _ in examples])
    found: list[Nearest | None] = []
    for group in groups:
        similarity = (vectorizer.transform(list(group)) @ matrix.T).toarray()
        best = np.array([similarity[:, rows == i].max(axis=1).mean() for i in range(len(names))])
        found.append(Nearest(names[int(best.argmax())], float(best.max())))
    return found


def article_candidates(gaps: Iterable[Gap]) -> list[Gap]:
    """Agent replies marked "make this an article", one per reply (the latest mark stands)."""
    marked = {(g.conversation_id, g.reply): g for g in gaps if g.kind == ARTICLE and g.reply.strip()}
    return list(marked.values())
