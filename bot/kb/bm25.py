"""Two BM25 backends with one interface, so the faster can be chosen by measurement (``make bench``):
``sparse`` — our own: a CSC matrix of precomputed per-term BM25 weights, a query sums its columns;
``bm25s`` — the bm25s package, which precomputes the same kind of matrix.

Both use Lucene's idf, log(1 + (N - df + 0.5) / (df + 0.5)), and expose :meth:`upper_bound`, the most a
document could score for a query, used to turn a score into a 0..1 coverage that is the same for both.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class BM25(Protocol):
    k1: float

    def scores(self, terms: Sequence[str]) -> np.ndarray: ...

    def upper_bound(self, terms: Sequence[str]) -> float: ...

    def save(self, directory: Path) -> None: ...


def _idf(n_docs: int, df: np.ndarray | float) -> Any:
    return np.log1p((n_docs - df + 0.5) / (df + 0.5))


class SparseBM25:
    """BM25 over a scipy CSC matrix (documents x terms) of precomputed term weights."""

    def __init__(
        self, k1: float, b: float, vocab: dict[str, int], matrix: Any, idf: np.ndarray, n_docs: int
    ) -> None:
        self.k1, self.b, self.vocab, self.matrix, self.idf, self.n_docs = k1, b, vocab, matrix, idf, n_docs

    @classmethod
    def build(cls, docs: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75) -> SparseBM25:
        from scipy.sparse import csc_matrix

        vocab: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        lengths = np.array([len(d) for d in docs], dtype=np.float64)
        for row, doc in enumerate(docs):
            for term, count in Counter(doc).items():
                rows.append(row)
                cols.append(vocab.setdefault(term, len(vocab)))
                tfs.append(count)
        tf = np.array(tfs, dtype=np.float64)
        row_idx = np.array(rows, dtype=np.int64)
        col_idx = np.array(cols, dtype=np.int64)
        avg = lengths.mean() if len(docs) else 1.0
        df = np.bincount(col_idx, minlength=len(vocab)).astype(np.float64)
        idf = _idf(len(docs), df)
        norm = k1 * (1 - b + b * lengths[row_idx] / (avg or 1.0))
        weights = idf[col_idx] * tf * (k1 + 1) / (tf + norm)
        matrix = csc_matrix((weights.astype(np.float32), (row_idx, col_idx)), shape=(len(docs), len(vocab)))
        return cls(k1, b, vocab, matrix, idf, len(docs))

    def scores(self, terms: Sequence[str]) -> np.ndarray:
        cols = [self.vocab[t] for t in terms if t in self.vocab]
        if not cols:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self.matrix[:, cols].sum(axis=1)).ravel()

    def upper_bound(self, terms: Sequence[str]) -> float:
        unseen = float(_idf(self.n_docs, 0.0))
        return float(sum(self.idf[self.vocab[t]] if t in self.vocab else unseen for t in terms)) * (
            self.k1 + 1
        )

    def save(self, directory: Path) -> None:
        from scipy.sparse import save_npz

        directory.mkdir(parents=True, exist_ok=True)
        save_npz(directory / "matrix.npz", self.matrix.tocsc())
        np.save(directory / "idf.npy", self.idf)
        (directory / "bm25.json").write_text(
            json.dumps(
                {"backend": "sparse", "k1": self.k1, "b": self.b, "n_docs": self.n_docs, "vocab": self.vocab},
                ensure_ascii=False,
            ),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, directory: Path) -> SparseBM25:
        from scipy.sparse import load_npz

        meta = json.loads((directory / "bm25.json").read_text(encoding="utf-8"))
        return cls(
            meta["k1"],
            meta["b"],
            meta["vocab"],
            load_npz(directory / "matrix.npz").tocsc(),
            np.load(directory / "idf.npy"),
            meta["n_docs"],
        )


class Bm25sBM25:
    """The bm25s package behind the same interface."""

    def __init__(self, retriever: Any, k1: float, df: dict[str, int], n_docs: int) -> None:
        self.retriever, self.k1, self.df, self.n_docs = retriever, k1, df, n_docs

    @classmethod
    def build(cls, docs: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75) -> Bm25sBM25:
        import bm25s

        retriever = bm25s.BM25(k1=k1, b=b)
        retriever.index([list(d) for d in docs], show_progress=False)
        df: Counter[str] = Counter()
        for doc in docs:
            df.update(set(doc))
        return cls(retriever, k1, dict(df), len(docs))

    def scores(self, terms: Sequence[str]) -> np.ndarray:
        known = [t for t in terms if t in self.df]
        if not known:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self.retriever.get_scores(known))

    def upper_bound(self, terms: Sequence[str]) -> float:
        # bm25s's Lucene variant leaves out BM25's (k1 + 1) factor, so its ceiling per term is the idf alone.
        return float(sum(_idf(self.n_docs, self.df.get(t, 0)) for t in terms))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.retriever.save(str(directory / "bm25s"), show_progress=False)
        (directory / "bm25.json").write_text(
            json.dumps(
                {"backend": "bm25s", "k1": self.k1, "n_docs": self.n_docs, "df": self.df}, ensure_ascii=False
            ),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, directory: Path) -> Bm25sBM25:
        import bm25s

        meta = json.loads((directory / "bm25.json").read_text(encoding="utf-8"))
        return cls(bm25s.BM25.load(str(directory / "bm25s")), meta["k1"], meta["df"], meta["n_docs"])


BACKENDS: dict[str, Any] = {"sparse": SparseBM25, "bm25s": Bm25sBM25}


def load_backend(directory: Path) -> BM25:
    backend = json.loads((directory / "bm25.json").read_text(encoding="utf-8"))["backend"]
    loaded: BM25 = BACKENDS[backend].load(directory)
    return loaded
