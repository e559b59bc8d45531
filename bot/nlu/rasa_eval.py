"""``triage eval --backend rasa``: the same evaluation as the native pipeline's, through a real Rasa.

Each training set is exported, trained with ``rasa train nlu``, served by ``rasa run`` on a free loopback
port and parsed message by message through the ``rasa`` backend (strict: a Rasa failure stops the
evaluation instead of silently scoring the native pipeline). The scores, threshold handling and report are
:mod:`bot.nlu.evaluation`'s, so the figures compare one to one; ``parse_ms`` is over HTTP.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.nlu.backend import NLUBackend, ParseContext
from bot.nlu.config import PipelineConfig
from bot.nlu.evaluation import Scored, Threshold, choose_threshold, cv_folds, metrics
from bot.nlu.pipeline import NLUPipeline, Progress
from bot.nlu.rasa_backend import ENRICHING, RasaBackend
from bot.nlu.rasa_project import DEFAULT_VENV, Classifier, RasaServer, export_project, train_project
from bot.nlu.registry import Context
from bot.nlu.training_data import OUT_OF_SCOPE, Example, TrainingData


@dataclass(frozen=True)
class RasaOptions:
    classifier: Classifier = Classifier.diet
    epochs: int = 100
    venv: Path = DEFAULT_VENV
    workdir: Path | None = None  # where the projects are written; default a temporary folder
    ready_timeout: float = 300.0


def score_backend(
    backend: NLUBackend, examples: Sequence[Example], progress: Progress | None = None
) -> list[Scored]:
    """Each example alone through ``backend``, scored on its ranking's top (before the fallback)."""
    scored = []
    context = ParseContext(today=dt.date.today())
    for i, ex in enumerate(examples):
        if progress and i % 200 == 0:
            progress(f"parsing {i:,}/{len(examples):,}")
        started = time.perf_counter()
        parsed = backend.parse_now(ex.text, context)
        elapsed = (time.perf_counter() - started) * 1000
        top = parsed.intent_ranking[0] if parsed.intent_ranking else None
        scored.append(
            Scored(
                ex,
                top.name if top else OUT_OF_SCOPE,
                top.confidence if top else 0.0,
                parsed.language,
                [e.to_rasa() for e in parsed.entities],
                elapsed,
            )
        )
    return scored


def enrichment_pipeline(train: TrainingData, config: PipelineConfig, context: Context) -> NLUPipeline:
    """The native components the rasa backend runs on top of Rasa (no classifier: nothing slow to train)."""
    steps = tuple((name, params) for name, params in config.steps if name in ENRICHING)
    return NLUPipeline.train(train, PipelineConfig(steps), context)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Trained:
    """One training set trained with Rasa and served, with the backend that parses through it."""

    def __init__(
        self,
        train: TrainingData,
        config: PipelineConfig,
        context: Context,
        project: Path,
        options: RasaOptions,
        progress: Progress,
    ) -> None:
        native = enrichment_pipeline(train, config, context)  # first: a bad lexicon fails before training
        export_project(train, config, context.data_dir, project, options.classifier, options.epochs)
        started = time.perf_counter()
        train_project(project, options.venv, lambda line: progress(f"rasa train: {line[-60:]}"))
        self.train_seconds = time.perf_counter() - started
        self.server = RasaServer(project, free_port(), venv=options.venv).start()
        try:
            self.server.wait_ready(options.ready_timeout, lambda s: progress(f"rasa run: {s[-60:]}"))
        except BaseException:
            self.server.stop()
            raise
        self.backend = RasaBackend(self.server.url, native, self.server.token, timeout=30.0, strict=True)

    def __enter__(self) -> _Trained:
        return self

    def __exit__(self, *exc: object) -> None:
        self.backend.close()
        self.server.stop()


@contextlib.contextmanager
def _workdir(options: RasaOptions) -> Iterator[Path]:
    """``options.workdir``, kept; else a temporary folder, removed afterwards (each Rasa model in it is tens
    of MiB)."""
    if options.workdir is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
        yield options.workdir
        return
    with tempfile.TemporaryDirectory(prefix="triage-rasa-eval-") as folder:
        yield Path(folder)


def evaluate_rasa(
    train: TrainingData,
    test: TrainingData,
    config: PipelineConfig,
    context: Context,
    val: TrainingData | None = None,
    progress: Progress | None = None,
    options: RasaOptions | None = None,
) -> dict[str, Any]:
    """:func:`bot.nlu.evaluation.evaluate`, with Rasa classifying."""
    progress, options = progress or (lambda stage: None), options or RasaOptions()
    with (
        _workdir(options) as workdir,
        _Trained(train, config, context, workdir / "project", options, progress) as trained,
    ):
        threshold: Threshold = config.param("fallback", "threshold")
        if val is not None:
            threshold = choose_threshold(score_backend(trained.backend, val.examples, progress))
        scored = score_backend(trained.backend, test.examples, progress)
    report = metrics(scored, threshold, sorted({ex.intent for ex in train.in_scope()}))
    report.update(
        backend=f"rasa-{options.classifier.value}",
        train_seconds=round(trained.train_seconds, 3),
        n_train=len(train.in_scope()),
        threshold_source="validation" if val is not None else "config",
    )
    report["_scored"] = scored
    return report


def cross_validate_rasa(
    data: TrainingData,
    config: PipelineConfig,
    context: Context,
    folds: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
    options: RasaOptions | None = None,
) -> dict[str, Any]:
    """:func:`bot.nlu.evaluation.cross_validate`'s folds (same splitter, same seed), with Rasa classifying."""
    progress, options = progress or (lambda stage: None), options or RasaOptions()
    scored: list[Scored] = []
    train_seconds = []
    with _workdir(options) as workdir:
        for fold, train, test in cv_folds(data, folds, seed):
            progress_fold = _prefixed(progress, fold, folds)
            with _Trained(train, config, context, workdir / f"fold{fold}", options, progress_fold) as trained:
                scored.extend(score_backend(trained.backend, test))
            train_seconds.append(trained.train_seconds)
    labels = {ex.intent for ex in data.examples}
    report = metrics(scored, config.param("fallback", "threshold"), sorted(labels - {OUT_OF_SCOPE}))
    report.update(
        backend=f"rasa-{options.classifier.value}",
        folds=folds,
        train_seconds=round(statistics.fmean(train_seconds), 3),
        n_train=len(data.examples),
        threshold_source="config",
    )
    report["_scored"] = scored
    return report


def _prefixed(progress: Progress, fold: int, folds: int) -> Progress:
    def report(stage: str) -> None:
        progress(f"fold {fold}/{folds}: {stage}")

    return report
