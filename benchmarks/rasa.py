"""Native NLU vs Rasa DIET vs Rasa LogisticRegression vs a plain TF-IDF script on the same splits, in one run
(``make bench-rasa``).

For each dataset — nlu_data (5-fold CV, :func:`bot.nlu.evaluation.cross_validate`'s folds), CLINC150 (the
threshold chosen on the validation split) and SMP2019 (train+dev → test) — every system is trained on the
same training set and scored by :func:`bot.nlu.evaluation.metrics`. The native pipeline runs twice: as
configured, and without its ``embedding`` step (what the sentence encoder costs and buys). Rasa is trained with ``rasa train nlu``
in ``.venv-rasa`` and parsed through a real ``rasa run`` by the ``rasa`` backend, exactly as ``triage eval
--backend rasa`` does. Besides the scores: training time, parse latency one message at a time (native in
process, native over HTTP through our app's ``/model/parse`` on a real uvicorn, Rasa over HTTP), the peak RSS
of the serving process, the model's size on disk and each environment's size. The baseline is
:mod:`benchmarks.tfidf_script`, a plain scikit-learn script run in its own process (no server: no HTTP column).

    python -m benchmarks.rasa [--datasets nlu_data,smp2019] [--systems native,rasa-logreg] [--epochs 50]
                              [--skip rasa-diet:clinc150 --why "…"] [--keep]

Writes benchmarks/results/rasa_compare.json after every (system, dataset), so a long run keeps what it
finished; ``--keep`` adds to the previous file instead of replacing it. Then benchmarks/results/rasa_compare.png.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks import tfidf_script
from benchmarks.common import (
    DATASETS,
    RESULTS,
    ROOT,
    dir_size_mib,
    environment_sizes,
    machine,
    percentiles,
    write_result,
)
from bot.nlu.config import PipelineConfig
from bot.nlu.evaluation import Scored, Threshold, choose_threshold, metrics, score_examples
from bot.nlu.pipeline import NLUPipeline
from bot.nlu.registry import Context
from bot.nlu.training_data import OUT_OF_SCOPE, Example, TrainingData, load_training_data

NAME = "rasa_compare"
DATA_DIR = ROOT / "nlu_data"
CONFIGS = ROOT / "benchmarks" / "configs"
CACHE = ROOT / "models" / "cache"  # the native benchmarks' embedding cache
RASA_VENV = ROOT / ".venv-rasa"
# cheapest first: a run cut short keeps the most
SYSTEMS = ("tfidf-script", "native-sparse", "native", "rasa-logreg", "rasa-diet")
DATASET_NAMES = ("nlu_data", "smp2019", "clinc150")
HTTP_SAMPLE = 1000  # messages timed over HTTP per dataset (spread over the test set), after a warm-up
WARMUP = 20


def _progress(stage: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {stage}", file=sys.stderr, flush=True)


@dataclass
class Dataset:
    """One dataset's splits: ``folds`` of (train, test), one pair where the data has a fixed test set."""

    name: str
    protocol: str
    config_path: Path
    folds: list[tuple[TrainingData, TrainingData]]
    val: TrainingData | None = None

    @property
    def config(self) -> PipelineConfig:
        return PipelineConfig.from_file(self.config_path)


def _pairs(pairs: list[tuple[str, str]]) -> TrainingData:
    return TrainingData([Example(text, label) for text, label in pairs])


def load_dataset(name: str) -> Dataset | str:
    """The dataset, or why it is skipped."""
    from bot.cli.data_cmd import read_clinc150, read_jsonl

    if name == "nlu_data":
        from sklearn.model_selection import StratifiedKFold

        data = load_training_data(DATA_DIR)
        labels = [ex.intent for ex in data.examples]
        splitter = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)  # cross_validate's folds
        folds = [
            (
                TrainingData([data.examples[i] for i in tr], data.synonyms, data.regexes, data.lookups),
                TrainingData([data.examples[i] for i in te]),
            )
            for tr, te in splitter.split(data.examples, labels)
        ]
        protocol = "5-fold stratified CV (seed 0), out_of_scope examples included; config threshold"
        return Dataset(name, protocol, DATA_DIR / "config.yml", folds)
    if name == "clinc150":
        source = DATASETS / "clinc150" / "data_full.json"
        if not source.exists():
            return f"skipped: {source} not found"
        s = read_clinc150(source)
        protocol = "CLINC150 full: train → test, threshold chosen on val (Larson et al. 2019)"
        return Dataset(
            name,
            protocol,
            CONFIGS / "clinc150.yml",
            [(_pairs(s["train"]), _pairs(s["test"]))],
            _pairs(s["val"]),
        )
    if name == "smp2019":
        source = DATASETS / "smp2019" / "smp2019_labeled_splits.jsonl"
        if not source.exists():
            return f"skipped: {source} not found"
        s = read_jsonl(source)
        train = _pairs(s["train"] + s.get("dev", []))
        return Dataset(
            name,
            "SMP2019-ECDT task 1: train+dev → test",
            CONFIGS / "smp2019.yml",
            [(train, _pairs(s["test"]))],
        )
    raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASET_NAMES)}")


# ------------------------------------------------------------------ measuring a live server
class PeakRSS:
    """Samples the RSS of a process and its children every 0.2 s until stopped; ``peak_mib`` is the most."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.process, self.peak_mib = psutil.Process(pid), 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(0.2):
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in tree)
            except psutil.Error:
                continue
            self.peak_mib = max(self.peak_mib, round(rss / 2**20, 1))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mib


def http_latency(url: str, token: str, texts: list[str]) -> dict[str, Any]:
    """``POST /model/parse`` one message at a time (after a warm-up), as a client sees it, in ms."""
    times = _timed_raw(url, token, texts)
    return {**percentiles(times), "n": len(times)}


def _sample(examples: list[Example]) -> list[str]:
    step = max(1, len(examples) // HTTP_SAMPLE)
    return [ex.text for ex in examples[::step][:HTTP_SAMPLE]]


def serving_app() -> Any:
    """``uvicorn --factory benchmarks.rasa:serving_app``: the whole product app, serving the NLU model in
    ``$TRIAGE_MODEL_DIR/nlu`` as it is (trained on a benchmark's training set, so nlu_data's fingerprint
    would not match it) and the knowledge base of ``models/kb``."""
    from bot.kb.search import KnowledgeBase
    from bot.settings import Settings
    from triagebot.app import create_app

    settings = Settings()
    nlu = NLUPipeline.load(settings.nlu_model_path, settings.data_dir, settings.timezone)
    data = load_training_data(settings.data_dir)
    kb_dir = settings.kb_dir
    kb = KnowledgeBase(
        kb_dir / "articles", ROOT / "models" / "kb", kb_dir / "config.yml", data.synonyms, data.intents
    )
    return create_app(settings, nlu, kb)


@contextlib.contextmanager
def native_server(model_dir: Path, token: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Our app on a real uvicorn (and its own redis-server) serving the model saved in ``model_dir/nlu``."""
    from tests.live import RedisServer, free_port, wait_until_ready

    redis = RedisServer(model_dir / "redis").start()
    port = free_port()
    env = {
        **os.environ,
        "TRIAGE_MODEL_DIR": str(model_dir),
        "TRIAGE_REDIS_URL": redis.url,
        "TRIAGE_VAR_DIR": str(model_dir / "var"),
        "TRIAGE_RASA_WEBHOOK_TOKEN": token,
        "TRIAGE_LOG_LEVEL": "warning",
    }
    args = ["-m", "uvicorn", "--factory", "benchmarks.rasa:serving_app", "--port", str(port)]
    log = model_dir / "uvicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *args, "--log-level", "warning"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, timeout=180, log=log)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        redis.stop()


# ------------------------------------------------------------------ one system on one dataset
@dataclass
class Run:
    """What one system measured on one dataset, fold by fold."""

    scored: list[Scored] = field(default_factory=list)
    train_seconds: list[float] = field(default_factory=list)
    threshold: Threshold = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def without_encoder(config: PipelineConfig) -> PipelineConfig:
    """``config`` less its ``embedding`` step: the classifier then has the sparse TF-IDF views only."""
    return PipelineConfig(tuple(step for step in config.steps if step[0] != "embedding"))


def run_native(ds: Dataset, work: Path, progress: Any, encoder: bool = True) -> Run:
    config, run = (ds.config if encoder else without_encoder(ds.config)), Run()
    context = Context(DATA_DIR, cache_dir=CACHE)
    run.threshold = config.param("fallback", "threshold")
    cache_before = dir_size_mib(CACHE) if CACHE.exists() else 0.0
    fastest: list[float] = []
    for k, (train, test) in enumerate(ds.folds, 1):
        progress(f"fold {k}/{len(ds.folds)}: training ({len(train.examples):,} examples)")
        model_dir = work / "native"
        pipeline = NLUPipeline.train(train, config, context)
        run.train_seconds.append(pipeline.meta["train_seconds"])
        if ds.val is not None:
            progress("choosing the threshold on the validation set")
            run.threshold = choose_threshold(score_examples(pipeline, ds.val.examples))
        progress(f"fold {k}/{len(ds.folds)}: parsing {len(test.examples):,} test messages in process")
        scored = score_examples(pipeline, test.examples)
        run.scored.extend(scored)
        progress(
            f"fold {k}/{len(ds.folds)}: {tfidf_script.PASSES - 1} more timed passes (each message's fastest)"
        )
        fastest.extend(
            tfidf_script.fastest_ms(
                [ex.text for ex in test.examples],
                [s.parse_ms for s in scored],
                functools.partial(pipeline.process, today=pipeline.today()),
            )
        )
    run.extra["parse_ms_fastest"] = _fastest_summary(fastest)
    # > 0: the training time includes encoding texts the embedding cache lacked (a first training)
    run.extra["embedding_cache_grew_mib"] = round(dir_size_mib(CACHE) - cache_before, 2)
    pipeline.save(model_dir / "nlu")  # the last fold's model is the one served and measured
    run.extra["model_size_mib"] = dir_size_mib(model_dir / "nlu")
    progress("serving the model with uvicorn; timing /model/parse")
    token = "bench"
    with native_server(model_dir, token) as (url, process):
        rss = PeakRSS(process.pid)
        run.extra["parse_ms_http"] = http_latency(url, token, _sample(ds.folds[-1][1].examples))
        run.extra["server_peak_rss_mib"] = rss.stop()
    return run


def _fastest_summary(fastest: list[float]) -> dict[str, Any]:
    """``parse_ms_fastest``: percentiles of each test message's fastest of the timed passes."""
    return {**percentiles(fastest), "passes": tfidf_script.PASSES}


def _script_scored(examples: list[Example], rows: list[list[Any]]) -> list[Scored]:
    """The script's (intent, confidence, ms) rows as the evaluation's records."""
    return [Scored(ex, top, conf, "", [], ms) for ex, (top, conf, ms) in zip(examples, rows, strict=True)]


def run_script(ds: Dataset, work: Path, progress: Any) -> Run:
    """:mod:`benchmarks.tfidf_script` on each fold, in a process of its own."""
    run = Run(threshold=ds.config.param("fallback", "threshold"))
    rss: list[float] = []
    fastest: list[float] = []
    for k, (train, test) in enumerate(ds.folds, 1):
        step = f"fold {k}/{len(ds.folds)}: " if len(ds.folds) > 1 else ""
        score = {"test": [ex.text for ex in test.examples]}
        if ds.val is not None:
            score["val"] = [ex.text for ex in ds.val.examples]
        splits, out = work / "splits.json", work / "script.json"
        train_pairs = [[ex.text, ex.intent] for ex in train.examples]
        splits.write_text(json.dumps({"train": train_pairs, "score": score}), encoding="utf-8")
        progress(f"{step}the TF-IDF script: training on {len(train.examples):,} and scoring one at a time")
        subprocess.run(
            [sys.executable, "-m", "benchmarks.tfidf_script", str(splits), str(out)], cwd=ROOT, check=True
        )
        got = json.loads(out.read_text(encoding="utf-8"))
        if ds.val is not None:
            run.threshold = choose_threshold(_script_scored(ds.val.examples, got["scored"]["val"]))
        run.scored.extend(_script_scored(test.examples, got["scored"]["test"]))
        run.train_seconds.append(got["train_seconds"])
        fastest.extend(got["fastest_ms"])
        rss.append(got["peak_rss_mib"])
        run.extra["model_size_mib"] = got["model_size_mib"]
    run.extra["script_peak_rss_mib"] = max(rss)
    run.extra["parse_ms_fastest"] = _fastest_summary(fastest)
    return run


def run_rasa(ds: Dataset, classifier: str, epochs: int, work: Path, progress: Any) -> Run:
    from bot.nlu.rasa_backend import RasaBackend
    from bot.nlu.rasa_eval import enrichment_pipeline, free_port, score_backend
    from bot.nlu.rasa_project import (
        Classifier,
        RasaServer,
        export_project,
        model_archive,
        new_token,
        train_project,
    )

    config, run = ds.config, Run()
    context = Context(DATA_DIR, cache_dir=CACHE)
    run.threshold = config.param("fallback", "threshold")
    peaks: list[float] = []
    http: list[float] = []
    for k, (train, test) in enumerate(ds.folds, 1):
        step = f"fold {k}/{len(ds.folds)}: " if len(ds.folds) > 1 else ""
        project = work / f"{classifier}-fold{k}"
        native = enrichment_pipeline(train, config, context)
        export_project(train, config, DATA_DIR, project, Classifier(classifier), epochs)
        progress(f"{step}rasa train nlu ({len(train.examples):,} examples)")
        started = time.perf_counter()
        train_project(project, RASA_VENV, _prefixed(progress, f"{step}rasa train: ", 70))
        run.train_seconds.append(time.perf_counter() - started)
        run.extra["model_size_mib"] = round(model_archive(project).stat().st_size / 2**20, 2)
        token = new_token()
        server = RasaServer(project, free_port(), token=token, venv=RASA_VENV).start()
        assert server.process is not None
        rss = PeakRSS(server.process.pid)
        try:
            server.wait_ready(600, _prefixed(progress, f"{step}rasa run: ", 60))
            backend = RasaBackend(server.url, native, server.token, timeout=30.0, strict=True)
            if ds.val is not None:
                progress("choosing the threshold on the validation set")
                run.threshold = choose_threshold(score_backend(backend, ds.val.examples))
            progress(f"{step}parsing {len(test.examples):,} test messages through rasa run")
            run.scored.extend(score_backend(backend, test.examples))
            backend.close()
            texts = _sample(test.examples)[: max(1, HTTP_SAMPLE // len(ds.folds))]
            http.extend(_timed_raw(server.url, server.token, texts))
        finally:
            server.stop()
            peaks.append(rss.stop())
    run.extra["parse_ms_http"] = {**percentiles(http), "n": len(http)}
    run.extra["server_peak_rss_mib"] = max(peaks)
    return run


def _prefixed(progress: Callable[[str], None], prefix: str, tail: int) -> Callable[[str], None]:
    def report(line: str) -> None:
        progress(prefix + line[-tail:])

    return report


def _timed_raw(url: str, token: str, texts: list[str]) -> list[float]:
    """``/model/parse`` (ours or Rasa's), one message at a time after a warm-up; the raw times in ms (folds
    are pooled before percentiles)."""
    times = []
    with httpx.Client(timeout=30.0) as client:
        for i, text in enumerate(texts[:WARMUP] + texts):
            started = time.perf_counter()
            client.post(f"{url}/model/parse", params={"token": token}, json={"text": text}).raise_for_status()
            if i >= WARMUP:
                times.append((time.perf_counter() - started) * 1000)
    return times


def summarise(ds: Dataset, run: Run, wall: float) -> dict[str, Any]:
    """One system's row: the evaluation's figures, its costs, and ``macro_f1_test_intents``: macro F1 over
    the intents the test set has. ``macro_f1`` also averages in every label only predicted — where a test
    set has no out-of-scope messages (SMP2019), each fallback to out_of_scope is already a miss in its
    intent's recall, and out_of_scope's F1 of 0 enters the average once more, so a system that falls back
    more often is charged twice."""
    labels = {ex.intent for train, _ in ds.folds for ex in train.examples} - {OUT_OF_SCOPE}
    report = metrics(run.scored, run.threshold, sorted(labels))
    tested = {s.example.intent for s in run.scored}
    f1_tested = [v["f1"] for label, v in report["per_intent"].items() if label in tested]
    keys = (
        "accuracy",
        "in_scope_accuracy",
        "oos_recall",
        "oos_precision",
        "macro_f1",
        "threshold",
        "n_test",
        "n_in_scope",
        "n_out_of_scope",
    )
    latencies = [s.parse_ms for s in run.scored]
    return {
        **{k: report[k] for k in keys},
        "macro_f1_test_intents": round(sum(f1_tested) / len(f1_tested), 4) if f1_tested else 0.0,
        "threshold_source": "validation" if ds.val is not None else "config",
        "n_train": len(ds.folds[0][0].examples),
        "train_seconds": round(sum(run.train_seconds) / len(run.train_seconds), 2),
        "train_seconds_folds": [round(t, 2) for t in run.train_seconds],
        "parse_ms_scoring": percentiles(latencies),
        **run.extra,
        "wall_seconds": round(wall, 1),
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def env_size_mib(path: Path) -> float | None:
    if not path.exists():
        return None
    out = subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=True).stdout
    return float(out.split()[0])


# ------------------------------------------------------------------ the run
def _previous(keep: bool, results_name: str) -> dict[str, Any]:
    """The results file a ``--keep`` run adds to (else a new one), its earlier runs each with its machine."""
    path = RESULTS / f"{results_name}.json"
    if not keep or not path.exists():
        return {"results": {}, "not_run": [], "datasets": {}, "runs": []}
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    runs = result.setdefault("runs", [])
    if "command" in result and not runs:  # a file written before runs were listed
        runs.append({"command": result["command"], "load_average": result.get("load_average_at_start")})
    if len(runs) == 1 and "machine" in result:  # recorded before runs named their machine: the file's
        runs[0].setdefault("machine", result["machine"])
    for key in ("benchmark", "measured_at", "machine"):
        result.pop(key, None)
    return result


def _not_run(result: dict[str, Any], system: str, dataset: str, reason: str) -> None:
    entries = [e for e in result["not_run"] if (e["system"], e["dataset"]) != (system, dataset)]
    result["not_run"] = [*entries, {"system": system, "dataset": dataset, "reason": reason}]
    print(f"not run: {system} on {dataset}: {reason}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rasa", description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASET_NAMES), help="comma-separated")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated")
    parser.add_argument("--epochs", type=int, default=50, help="DIET's epochs (default 50)")
    parser.add_argument("--skip", action="append", default=[], help="SYSTEM:DATASET not to run")
    parser.add_argument("--why", default="", help="recorded with every --skip and deselected pair")
    parser.add_argument("--keep", action="store_true", help="add to the previous rasa_compare.json")
    parser.add_argument(
        "--name",
        default=NAME,
        help="results file: benchmarks/results/NAME.json and .png (another name keeps a partial run, such as "
        "native systems re-measured on another machine, apart from the recorded one-run comparison)",
    )
    args = parser.parse_args(argv)
    datasets, systems = args.datasets.split(","), args.systems.split(",")
    for name in systems:
        if name not in SYSTEMS:
            parser.error(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")
    for name in datasets:
        if name not in DATASET_NAMES:
            parser.error(f"unknown dataset {name!r}; choose from {', '.join(DATASET_NAMES)}")
    skip = {tuple(s.split(":", 1)) for s in args.skip}
    why = f" ({args.why})" if args.why else ""

    results_name = args.name
    if not results_name.replace("_", "").isalnum():
        parser.error(f"--name {results_name!r}: letters, digits and underscores only")
    result = _previous(args.keep, results_name)
    runs = result["runs"]
    runs.append(
        {
            "command": shlex.join(
                ["python", "-m", "benchmarks.rasa", *(sys.argv[1:] if argv is None else argv)]
            ),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "load_average": [round(x, 1) for x in os.getloadavg()],
            "diet_epochs": args.epochs,
            "machine": machine(),  # a --keep run may be on another machine than the file's first
        }
    )
    for key in ("command", "load_average_at_start", "diet_epochs"):
        result.pop(key, None)
    result.update(
        rasa_version="3.6.21",
        environment_mib={
            "native (.venv)": env_size_mib(ROOT / ".venv"),
            "rasa (.venv-rasa)": env_size_mib(RASA_VENV),
            "TF-IDF script (its packages)": tfidf_script.environment_mib(),
        },
    )
    from benchmarks.servers import ensure_models

    ensure_models()  # the served app's knowledge base (models/kb) is current
    if not args.keep:
        for dataset in (name for name in DATASET_NAMES if name not in datasets):
            for system in SYSTEMS:
                _not_run(result, system, dataset, f"not selected (--datasets){why}")
    work = Path(tempfile.mkdtemp(prefix="triage-bench-rasa-"))
    try:
        for dataset in datasets:
            print(f"rasa comparison: {dataset}", file=sys.stderr, flush=True)
            ds = load_dataset(dataset)
            if isinstance(ds, str):
                result["datasets"][dataset] = {"skipped": ds}
                for system in systems:
                    _not_run(result, system, dataset, ds)
                write_result(results_name, result)
                continue
            info = {  # recorded with a result: nlu_data may change between --keep runs
                "protocol": ds.protocol,
                "config": str(ds.config_path.relative_to(ROOT)),
                "n_train": len(ds.folds[0][0].examples),
                "n_test": sum(len(test.examples) for _, test in ds.folds),
            }
            for system in SYSTEMS:
                if system not in systems:
                    if not args.keep:
                        _not_run(result, system, dataset, f"not selected (--systems){why}")
                    continue
                if (system, dataset) in skip:
                    _not_run(result, system, dataset, f"--skip {system}:{dataset}{why}")
                    continue
                if system.startswith("rasa") and not (RASA_VENV / "bin" / "rasa").exists():
                    _not_run(result, system, dataset, "no .venv-rasa: run `make rasa`")
                    continue
                print(f" {system} on {dataset}", file=sys.stderr, flush=True)
                folder = work / f"{dataset}-{system}"
                folder.mkdir()
                started = time.perf_counter()
                try:
                    if system == "tfidf-script":
                        run = run_script(ds, folder, _progress)
                    elif system.startswith("native"):
                        run = run_native(ds, folder, _progress, encoder=system == "native")
                    else:
                        run = run_rasa(ds, system.removeprefix("rasa-"), args.epochs, folder, _progress)
                except Exception as exc:  # one failing system must not cost the others' figures
                    _not_run(result, system, dataset, f"failed: {type(exc).__name__}: {str(exc)[-300:]}")
                    write_result(results_name, result)
                    continue
                entry = summarise(ds, run, time.perf_counter() - started)
                if system == "rasa-diet":
                    entry["epochs"] = args.epochs
                entry["run"] = len(runs)  # which of `runs` measured it (1-based): --keep mixes runs
                result["results"].setdefault(dataset, {})[system] = entry
                result["datasets"][dataset] = info
                result["not_run"] = [
                    e for e in result["not_run"] if (e["system"], e["dataset"]) != (system, dataset)
                ]
                write_result(results_name, result)
                shutil.rmtree(folder, ignore_errors=True)
            write_result(results_name, result)  # the skipped ones too
    finally:
        shutil.rmtree(work, ignore_errors=True)
    plot(result, RESULTS / f"{results_name}.png")


# ------------------------------------------------------------------ the plot
LABELS = {
    "tfidf-script": "plain TF-IDF + LR script",
    "native-sparse": "triagebot, no encoder",
    "native": "triagebot (native)",
    "rasa-logreg": "Rasa LogisticRegression",
    "rasa-diet": "Rasa DIET",
}
COLOURS = {
    "tfidf-script": "#bdbdbd",
    "native-sparse": "#9ecae1",
    "native": "#2b8cbe",
    "rasa-logreg": "#fdae6b",
    "rasa-diet": "#e6550d",
}


def log_floor(values: list[float]) -> float:
    """The bottom of a log axis showing every one of ``values``: 1, or the decade under the smallest when a
    value is below 1 (SMP2019's sparse training, 0.6 s, was a bar under the axis with its label on the
    dataset's name)."""
    lowest = min((v for v in values if v > 0), default=1.0)
    return min(1.0, 10.0 ** math.floor(math.log10(lowest)))


def plot(result: dict[str, Any], path: Path) -> None:
    """Six panels, two rows: accuracy per dataset (grouped bars per system), training time, p99 latency of the
    bot's NLU call (in process; the script's predict_proba) and over HTTP, serving memory (the script: its
    peak) and model size (log scales); each environment's size in the footer. A missing bar is labelled "not
    run" ("no server" for the script's HTTP figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker
    from matplotlib.patches import Patch

    res = result["results"]
    score_groups = [
        ("nlu_data\naccuracy (5-fold)", "nlu_data", "accuracy"),
        ("SMP2019\naccuracy", "smp2019", "accuracy"),
        ("CLINC150\nin-scope acc.", "clinc150", "in_scope_accuracy"),
        ("CLINC150\nOOS recall", "clinc150", "oos_recall"),
    ]
    cost_groups = [(name, name, "") for name in DATASET_NAMES]
    fig, grid = plt.subplots(2, 3, figsize=(18, 10))
    axes = grid.ravel()
    panels: list[
        tuple[Any, list[tuple[str, str, str]], Callable[[dict[str, Any], str], float | None], str, str, bool]
    ]
    panels = [
        (axes[0], score_groups, lambda e, key: 100 * e[key], "%", "Accuracy (higher is better)", False),
        (
            axes[1],
            cost_groups,
            lambda e, key: e["train_seconds"],
            "s",
            "Training time per model, s (log; lower is better)",
            True,
        ),
        (
            axes[2],
            cost_groups,
            lambda e, key: e["parse_ms_scoring"]["p99"],
            "ms",
            "The bot's NLU call p99, one message, ms (log)",
            True,
        ),
        (
            axes[3],
            cost_groups,
            lambda e, key: e["parse_ms_http"]["p99"] if "parse_ms_http" in e else None,
            "ms",
            "Parse p99 over HTTP, one message, ms (log)",
            True,
        ),
        (
            axes[4],
            cost_groups,
            lambda e, key: e.get("server_peak_rss_mib") or e.get("script_peak_rss_mib"),
            "MiB",
            "Serving memory, peak RSS MiB (the script: its peak, training included)",
            False,
        ),
        (
            axes[5],
            cost_groups,
            lambda e, key: e.get("model_size_mib"),
            "MiB",
            "Model on disk, MiB (log)",
            True,
        ),
    ]
    width = 0.84 / len(SYSTEMS)
    for ax, groups, value, unit, title, log in panels:
        drawn: list[float] = []
        for j, system in enumerate(SYSTEMS):
            for i, (_, dataset, key) in enumerate(groups):
                x = i + (j - (len(SYSTEMS) - 1) / 2) * width
                entry = res.get(dataset, {}).get(system)
                v = None if entry is None else value(entry, key)
                if v is None:
                    ax.text(
                        x,
                        0.02,
                        "not run" if entry is None else "no server" if ax is axes[3] else "not measured",
                        rotation=90,
                        ha="center",
                        va="bottom",
                        fontsize=7,
                        color="grey",
                        transform=ax.get_xaxis_transform(),
                    )
                    continue
                ax.bar(x, v, width, color=COLOURS[system])
                drawn.append(v)
                ax.text(
                    x,
                    v,
                    f"{v:.1f}" if v < 100 or unit == "%" else f"{v:.0f}",
                    ha="center",
                    va="bottom",
                    fontsize=6,
                    rotation=90 if unit == "%" else 0,
                )
        ax.set_xticks(range(len(groups)), [g[0] for g in groups], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlim(-0.5, len(groups) - 0.5)
        if log:
            ax.set_yscale("log")
            ax.set_ylim(log_floor(drawn), ax.get_ylim()[1] * 2.5)  # room for the value labels
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        else:
            ax.set_ylim(0, 112 if unit == "%" else max(drawn, default=1.0) * 1.12)
    handles = [Patch(color=COLOURS[s], label=LABELS[s]) for s in SYSTEMS]
    fig.legend(handles=handles, loc="upper center", ncol=len(SYSTEMS), frameon=False)
    epochs = {e.get("epochs") for d in res.values() for s, e in d.items() if s == "rasa-diet"} - {None}
    sizes = environment_sizes(result.get("environment_mib", {}))
    fig.text(
        0.5,
        0.005,
        f"Same splits, same scoring; DIET epochs: {', '.join(map(str, sorted(epochs))) or '—'}."
        " Rasa's training time includes starting `rasa train`."
        + (f" Environments on disk: {sizes}." if sizes else "")
        + " Details: docs/benchmarks.md.",
        ha="center",
        fontsize=8,
        color="dimgrey",
    )
    fig.tight_layout(rect=(0, 0.025, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {os.path.relpath(path, ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:2] == ["plot"]:  # redraw from the JSON
        plot(json.loads((RESULTS / f"{NAME}.json").read_text(encoding="utf-8")), RESULTS / f"{NAME}.png")
    else:
        main()
