"""Evaluation of the NLU: accuracy with out-of-scope as its own class (Larson et al. 2019), per-intent
precision/recall/F1, entity precision/recall, per-language accuracy, latency, a confusion matrix, and the
calibration of the confidences (expected calibration error, reliability diagram)."""

from __future__ import annotations

import logging
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.nlu.components import THRESHOLD_LANGUAGES, fallback_threshold
from bot.nlu.config import PipelineConfig
from bot.nlu.pipeline import NLUPipeline, Progress
from bot.nlu.registry import Context
from bot.nlu.training_data import OUT_OF_SCOPE, Example, TrainingData

logger = logging.getLogger(__name__)

THRESHOLD_GRID = np.round(np.arange(0.0, 1.0, 0.005), 3)
ECE_BINS = 10
Threshold = float | dict[str, float]  # one, or one per language (the fallback component's setting)


@dataclass
class Scored:
    """One evaluated example: gold label, the classifier's top intent and confidence, language, latency,
    and the top confidence before calibration."""

    example: Example
    top: str
    confidence: float
    language: str
    entities: list[dict[str, Any]]
    parse_ms: float
    raw_confidence: float | None = None


def score_examples(
    pipeline: NLUPipeline, examples: Sequence[Example], progress: Progress | None = None
) -> list[Scored]:
    """Run each example alone through the full pipeline, as a live message would be (warm, as a server's)."""
    pipeline.warm_up()
    scored = []
    today = pipeline.today()
    for i, ex in enumerate(examples):
        if progress and i % 500 == 0:
            progress(f"parsing {i:,}/{len(examples):,}")
        started = time.perf_counter()
        state = pipeline.process(ex.text, today)
        elapsed = (time.perf_counter() - started) * 1000
        top, conf = state.ranking[0] if state.ranking else (OUT_OF_SCOPE, 0.0)
        language = state.language.language if state.language else "zh"
        scored.append(Scored(ex, top, conf, language, state.entities, elapsed, state.raw_confidence))
    return scored


def predictions(scored: Sequence[Scored], threshold: Threshold) -> list[str]:
    return [
        s.top
        if s.confidence >= fallback_threshold(threshold, s.language) and s.top != OUT_OF_SCOPE
        else OUT_OF_SCOPE
        for s in scored
    ]


def choose_threshold(scored: Sequence[Scored]) -> float:
    """The threshold that maximises accuracy with OOS counted as its own class (ties: the lowest)."""
    gold = np.array([s.example.intent for s in scored])
    top = np.array([s.top for s in scored])
    conf = np.array([s.confidence for s in scored])
    best, best_acc = 0.0, -1.0
    for th in THRESHOLD_GRID:
        acc = float(np.mean(np.where(conf >= th, top, OUT_OF_SCOPE) == gold))
        if acc > best_acc:
            best, best_acc = float(th), acc
    return best


def choose_thresholds(scored: Sequence[Scored]) -> dict[str, float]:
    """:func:`choose_threshold` for each language's messages (mixed ones count as zh)."""

    def group(language: str) -> str:
        return language if language in THRESHOLD_LANGUAGES else "zh"

    return {
        lang: choose_threshold([s for s in scored if group(s.language) == lang])
        for lang in THRESHOLD_LANGUAGES
    }


def expected_calibration_error(confidence: Any, correct: Any, bins: int = ECE_BINS) -> float:
    """ECE (Guo et al. 2017): the support-weighted mean |accuracy - mean confidence| over equal-width
    confidence bins."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            error += members.sum() * abs(correct[members].mean() - confidence[members].mean())
    return round(error / len(confidence), 4) if len(confidence) else 0.0


def calibration_metrics(scored: Sequence[Scored]) -> dict[str, Any]:
    """ECE of the top intent's confidence (right = the top intent is the gold one, out_of_scope a class),
    before and after calibration."""
    correct = [s.top == s.example.intent for s in scored]
    raw = [s.confidence if s.raw_confidence is None else s.raw_confidence for s in scored]
    return {
        "bins": ECE_BINS,
        "ece_before": expected_calibration_error(raw, correct),
        "ece_after": expected_calibration_error([s.confidence for s in scored], correct),
    }


def _ratio(num: float, den: float) -> float:
    return round(num / den, 4) if den else 0.0


def _percentile(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3) if values else 0.0


def metrics(scored: Sequence[Scored], threshold: Threshold, known_intents: Sequence[str]) -> dict[str, Any]:
    """The report for ``scored`` at ``threshold``."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    gold = [s.example.intent for s in scored]
    pred = predictions(scored, threshold)
    unknown = sorted({g for g in gold if g != OUT_OF_SCOPE and g not in known_intents})
    if unknown:
        logger.warning(
            "test data has intents the training data lacks (counted as errors): %s", ", ".join(unknown)
        )
    in_scope = [(g, p) for g, p in zip(gold, pred, strict=True) if g != OUT_OF_SCOPE]
    oos = [(g, p) for g, p in zip(gold, pred, strict=True) if g == OUT_OF_SCOPE]
    predicted_oos = [(g, p) for g, p in zip(gold, pred, strict=True) if p == OUT_OF_SCOPE]
    labels = sorted(set(gold) | set(pred))
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, pred, labels=labels, zero_division=0
    )
    by_language: dict[str, list[bool]] = defaultdict(list)
    for s, p in zip(scored, pred, strict=True):
        by_language[s.language].append(p == s.example.intent)
    latencies = [s.parse_ms for s in scored]
    return {
        "n_test": len(scored),
        "n_in_scope": len(in_scope),
        "n_out_of_scope": len(oos),
        "threshold": (
            {k: round(v, 3) for k, v in threshold.items()}
            if isinstance(threshold, dict)
            else round(threshold, 3)
        ),
        "in_scope_accuracy": _ratio(sum(g == p for g, p in in_scope), len(in_scope)),
        "in_scope_accuracy_no_threshold": _ratio(
            sum(s.top == s.example.intent for s in scored if s.example.intent != OUT_OF_SCOPE), len(in_scope)
        ),
        "oos_recall": _ratio(sum(p == OUT_OF_SCOPE for _, p in oos), len(oos)),
        "oos_precision": _ratio(sum(g == OUT_OF_SCOPE for g, _ in predicted_oos), len(predicted_oos)),
        "accuracy": _ratio(sum(g == p for g, p in zip(gold, pred, strict=True)), len(gold)),
        "macro_f1": round(float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0)), 4),
        "per_intent": {
            label: {
                "precision": round(float(pr), 4),
                "recall": round(float(rc), 4),
                "f1": round(float(f), 4),
                "support": int(n),
            }
            for label, pr, rc, f, n in zip(labels, precision, recall, f1, support, strict=True)
        },
        "by_language": {
            lang: {"accuracy": _ratio(sum(v), len(v)), "n": len(v)} for lang, v in sorted(by_language.items())
        },
        "calibration": calibration_metrics(scored),
        "entities": entity_metrics(scored),
        "unknown_test_intents": unknown,
        "parse_ms_p50": _percentile(latencies, 50),
        "parse_ms_p99": _percentile(latencies, 99),
        "parse_ms_mean": round(statistics.fmean(latencies), 3) if latencies else 0.0,
    }


def entity_metrics(scored: Sequence[Scored]) -> dict[str, dict[str, float]]:
    """Exact-span precision/recall per entity type, on examples that carry annotations."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for s in scored:
        gold = {(e.entity, e.start, e.end) for e in s.example.entities}
        found = {(e["entity"], e["start"], e["end"]) for e in s.entities}
        for entity, *_ in gold & found:
            tp[entity] += 1
        for entity, *_ in found - gold:
            fp[entity] += 1
        for entity, *_ in gold - found:
            fn[entity] += 1
    return {
        name: {
            "precision": _ratio(tp[name], tp[name] + fp[name]),
            "recall": _ratio(tp[name], tp[name] + fn[name]),
            "support": tp[name] + fn[name],
        }
        for name in sorted(set(tp) | set(fn))
    }


def evaluate(
    train: TrainingData,
    test: TrainingData,
    config: PipelineConfig,
    context: Context,
    val: TrainingData | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train on ``train``; choose the threshold on ``val`` if given (else the config's); report on ``test``."""
    progress = progress or (lambda stage: None)
    pipeline = NLUPipeline.train(train, config, context, progress)
    threshold: Threshold = config.param("fallback", "threshold")
    if val is not None:
        progress("choosing the fallback threshold on the validation set")
        threshold = choose_threshold(score_examples(pipeline, val.examples, progress))
    scored = score_examples(pipeline, test.examples, progress)
    report = metrics(scored, threshold, pipeline.intents)
    report.update(
        train_seconds=pipeline.meta["train_seconds"],
        n_train=pipeline.meta["examples"],
        threshold_source="validation" if val is not None else "config",
    )
    report["_scored"] = scored
    return report


def cv_folds(data: TrainingData, folds: int, seed: int) -> Iterator[tuple[int, TrainingData, list[Example]]]:
    """Stratified k-fold splits of ``data`` (fold number from 1, training data with the tables, test examples):
    every backend's cross-validation uses these, so their figures compare on the same folds."""
    from sklearn.model_selection import StratifiedKFold

    examples = data.examples
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (train_idx, test_idx) in enumerate(splitter.split(examples, [ex.intent for ex in examples]), 1):
        train = TrainingData([examples[i] for i in train_idx], data.synonyms, data.regexes, data.lookups)
        yield fold, train, [examples[i] for i in test_idx]


def cross_validate(
    data: TrainingData,
    config: PipelineConfig,
    context: Context,
    folds: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Stratified k-fold over all examples, out-of-scope ones included: each is tested exactly once by a
    model that never saw it (whether the classifier trains on out_of_scope is its own config)."""
    progress = progress or (lambda stage: None)
    scored: list[Scored] = []
    train_seconds = []
    for fold, train, test in cv_folds(data, folds, seed):
        progress(f"fold {fold}/{folds}")
        pipeline = NLUPipeline.train(train, config, context)
        train_seconds.append(pipeline.meta["train_seconds"])
        scored.extend(score_examples(pipeline, test))
    labels = {ex.intent for ex in data.examples}
    report = metrics(scored, config.param("fallback", "threshold"), sorted(labels - {OUT_OF_SCOPE}))
    report.update(
        folds=folds,
        train_seconds=round(statistics.fmean(train_seconds), 3),
        n_train=len(data.examples),
        threshold_source="config",
    )
    report["_scored"] = scored
    return report


def plot_confusion(scored: Sequence[Scored], threshold: Threshold, path: Path, max_labels: int = 30) -> None:
    """A confusion matrix PNG; with many labels, only those involved in the most errors are drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    gold = [s.example.intent for s in scored]
    pred = predictions(scored, threshold)
    errors: Counter[str] = Counter()
    for g, p in zip(gold, pred, strict=True):
        if g != p:
            errors[g] += 1
            errors[p] += 1
    labels = sorted(set(gold) | set(pred))
    title = "Confusion matrix (rows: true intent, columns: predicted)"
    if len(labels) > max_labels:
        labels = sorted(label for label, _ in errors.most_common(max_labels))
        title += f" — the {len(labels)} intents with most errors"
    matrix = confusion_matrix(gold, pred, labels=labels)
    size = max(8.0, 0.42 * len(labels) + 3)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels=labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels=labels, fontsize=8)
    peak = matrix.max() if matrix.size else 0
    for i in range(len(labels)):
        for j in range(len(labels)):
            if matrix[i, j]:
                ax.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if matrix[i, j] > peak / 2 else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def reliability_path(confusion_path: Path) -> Path:
    """Where the reliability diagram goes: beside the confusion matrix."""
    return confusion_path.with_name(f"{confusion_path.stem}_reliability.png")


def plot_reliability(scored: Sequence[Scored], path: Path, bins: int = ECE_BINS) -> None:
    """A reliability diagram: accuracy of the top intent per confidence bin, before and after
    calibration, against the diagonal of perfect calibration, with each curve's ECE."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    correct = np.array([s.top == s.example.intent for s in scored], dtype=float)
    curves = {
        "before calibration": np.array(
            [s.confidence if s.raw_confidence is None else s.raw_confidence for s in scored]
        ),
        "after calibration": np.array([s.confidence for s in scored]),
    }
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for (label, confidence), marker in zip(curves.items(), ("o", "s"), strict=True):
        index = np.minimum((confidence * bins).astype(int), bins - 1)
        xs, ys = [], []
        for b in range(bins):
            members = index == b
            if members.any():
                xs.append(confidence[members].mean())
                ys.append(correct[members].mean())
        ece = expected_calibration_error(confidence, correct, bins)
        ax.plot(xs, ys, marker=marker, label=f"{label} (ECE {ece:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence of the top intent (bin mean)")
    ax.set_ylabel("accuracy (top intent = gold, out_of_scope a class)")
    ax.set_title(f"Reliability diagram ({len(scored):,} messages, {bins} bins)", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
