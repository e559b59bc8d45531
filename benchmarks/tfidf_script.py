"""The plain TF-IDF + logistic-regression script that the Rasa comparison measures every system against
(issue 11's "for scale" baseline): what a team writes in an afternoon with scikit-learn and nothing else —
word 1–2-grams and char_wb 2–5-grams, sublinear TF-IDF, one multinomial logistic regression (C = 10). No
normalisation, no lemmas, no entities, no sentence encoder, no calibration, no server.

    python -m benchmarks.tfidf_script SPLITS.json OUT.json

SPLITS.json: ``{"train": [[text, label], ...], "score": {"val": [text, ...], "test": [text, ...]}}``.
OUT.json: the training time, each scored text's top label, confidence and time (one message at a time,
``predict_proba([text])``, as a script serving one message would call it), each test text's fastest time of
:data:`PASSES` passes (its cost without the machine's noise: :func:`fastest_ms`), the pickled model's size and
the process's peak RSS. It runs in its own process so that the RSS is the script's alone.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

# Timed passes over the test messages for the fastest-of figure. On a shared 2-core VM one pass's p99 carries
# up to ~0.8 ms of other processes' work, which decided which of two ~1.3 ms systems "won" a run; a message's
# fastest of three passes is its own cost (the way timeit reports the minimum).
PASSES = 3

# What the script needs installed: its environment is these distributions (and Python itself).
DISTRIBUTIONS = ("scikit-learn", "numpy", "scipy", "joblib", "threadpoolctl")


def fastest_ms(
    texts: Sequence[str],
    first: Sequence[float],
    call: Callable[[str], Any],
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Each text's fastest time in ms: ``first`` (the scored pass's times) and :data:`PASSES` - 1 more passes
    of ``call(text)`` over all the texts, one message at a time, timed by ``clock`` (seconds)."""
    if len(first) != len(texts):
        raise ValueError(f"{len(first)} first-pass times for {len(texts)} texts")
    fastest = list(first)
    for _ in range(PASSES - 1):
        for i, text in enumerate(texts):
            started = clock()
            call(text)
            fastest[i] = min(fastest[i], (clock() - started) * 1000)
    return fastest


def build() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
    )
    return make_pipeline(features, LogisticRegression(C=10.0, max_iter=1000))


def environment_mib() -> float:
    """The installed size of :data:`DISTRIBUTIONS`, from their RECORD files."""
    total = 0
    for name in DISTRIBUTIONS:
        for file in metadata.distribution(name).files or []:
            path = Path(str(file.locate()))
            if path.is_file():
                total += path.stat().st_size
    return round(total / 2**20, 1)


def run(splits: dict[str, Any]) -> dict[str, Any]:
    import joblib

    texts, labels = zip(*splits["train"], strict=True)
    model = build()
    started = time.perf_counter()
    model.fit(list(texts), list(labels))
    train_seconds = time.perf_counter() - started
    classes = [str(c) for c in model.classes_]
    scored: dict[str, list[tuple[str, float, float]]] = {}
    for split, batch in splits["score"].items():
        rows = []
        for text in batch:
            started = time.perf_counter()
            proba = model.predict_proba([text])[0]
            elapsed = (time.perf_counter() - started) * 1000
            best = int(proba.argmax())
            rows.append((classes[best], float(proba[best]), elapsed))
        scored[split] = rows
    test = splits["score"]["test"]
    fastest = fastest_ms(test, [ms for _, _, ms in scored["test"]], lambda text: model.predict_proba([text]))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.joblib"
        joblib.dump(model, path)  # as a script saves it: joblib's defaults, no compression
        model_mib = path.stat().st_size / 2**20
    return {
        "train_seconds": round(train_seconds, 2),
        "scored": scored,
        "fastest_ms": fastest,
        "model_size_mib": round(model_mib, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit("usage: python -m benchmarks.tfidf_script SPLITS.json OUT.json")
    splits = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    Path(argv[1]).write_text(json.dumps(run(splits)), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
