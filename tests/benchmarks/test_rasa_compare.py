"""The Rasa comparison's own systems (benchmarks/rasa.py): the plain TF-IDF script baseline, run as its own
process, and the native pipeline without its encoder. Rasa itself is exercised by
tests/nlu/test_rasa_integration.py (make test-rasa)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import tfidf_script
from benchmarks.rasa import Dataset, Run, log_floor, run_script, summarise, without_encoder
from bot.nlu.config import PipelineConfig
from bot.nlu.evaluation import THRESHOLD_GRID, Scored
from bot.nlu.training_data import Example, TrainingData

ROOT = Path(__file__).resolve().parents[2]
TRAIN = [
    *[(f"invoice check failed number {i}", "verify_invoice") for i in range(6)],
    *[(f"cannot log in password reset {i}", "login_issue") for i in range(6)],
    *[(f"export the report to excel {i}", "export_data") for i in range(6)],
]


def _data(pairs: list[tuple[str, str]]) -> TrainingData:
    return TrainingData([Example(text, label) for text, label in pairs])


@pytest.mark.slow
def test_the_script_runs_alone_and_reports_every_scored_message(tmp_path: Path) -> None:
    splits = {"train": TRAIN, "score": {"test": ["invoice check failed", "log in password", "hello"]}}
    (tmp_path / "splits.json").write_text(json.dumps(splits), encoding="utf-8")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.tfidf_script",
            str(tmp_path / "splits.json"),
            str(tmp_path / "out.json"),
        ],
        cwd=ROOT,
        check=True,
    )
    out = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    rows = out["scored"]["test"]
    assert [top for top, _, _ in rows[:2]] == ["verify_invoice", "login_issue"]
    assert all(0 < conf <= 1 and ms > 0 for _, conf, ms in rows)
    assert len(out["fastest_ms"]) == 3  # the test split's, each its fastest of three passes
    assert all(0 < fast <= ms for fast, (_, _, ms) in zip(out["fastest_ms"], rows, strict=True))
    assert out["train_seconds"] > 0 and out["model_size_mib"] > 0 and out["peak_rss_mib"] > 0


def test_the_script_refuses_a_wrong_command_line() -> None:
    with pytest.raises(SystemExit, match="usage"):
        tfidf_script.main(["only-one.json"])


def test_the_script_environment_is_its_packages_only() -> None:
    assert 50 < tfidf_script.environment_mib() < 1000  # scikit-learn, numpy, scipy, … — not the whole .venv


@pytest.mark.slow
def test_run_script_chooses_the_threshold_on_validation_and_scores_every_fold(tmp_path: Path) -> None:
    config = ROOT / "benchmarks" / "configs" / "clinc150.yml"
    folds = [(_data(TRAIN), _data(TRAIN[:3])), (_data(TRAIN), _data(TRAIN[6:8]))]
    ds = Dataset(
        "tiny", "two folds", config, folds, val=_data([*TRAIN[::4], ("what is the weather", "out_of_scope")])
    )
    run = run_script(ds, tmp_path, lambda stage: None)
    assert [s.example.text for s in run.scored] == [ex.text for _, test in folds for ex in test.examples]
    assert len(run.train_seconds) == 2 and run.threshold in THRESHOLD_GRID
    assert run.extra["script_peak_rss_mib"] > 0
    fastest = run.extra["parse_ms_fastest"]
    assert fastest["passes"] == tfidf_script.PASSES and 0 < fastest["p50"] <= fastest["p99"]


def test_without_encoder_drops_the_embedding_step_and_nothing_else() -> None:
    config = PipelineConfig.from_file(ROOT / "nlu_data" / "config.yml")
    names = [name for name, _ in config.steps]
    assert "embedding" in names
    assert [name for name, _ in without_encoder(config).steps] == [n for n in names if n != "embedding"]


def test_a_log_axis_reaches_down_to_its_smallest_bar() -> None:
    # SMP2019's sparse training (0.57 s) was drawn under an axis starting at 1, its label over the dataset's name
    assert log_floor([0.57, 3.2, 2421.0]) == 0.1
    assert log_floor([0.05]) == 0.01
    assert log_floor([1.9, 46.0]) == 1.0  # nothing under 1: the axis starts at 1 as before
    assert log_floor([]) == 1.0


def test_fastest_ms_keeps_each_messages_quickest_pass() -> None:
    """A message slowed by another process in one pass is timed by its quickest: a clock that adds 5 ms to
    every call of the first extra pass and nothing to the second."""
    ticks = iter([0.0, 0.007, 0.0, 0.0072, 0.0, 0.002, 0.0, 0.0009])  # (start, end) per call, seconds
    calls: list[str] = []
    fastest = tfidf_script.fastest_ms(["a", "b"], [3.0, 1.0], calls.append, clock=lambda: next(ticks))
    assert calls == ["a", "b", "a", "b"]  # PASSES - 1 more passes, one message at a time
    assert fastest == pytest.approx([2.0, 0.9])


def test_fastest_ms_refuses_first_pass_times_that_do_not_match_the_texts() -> None:
    with pytest.raises(ValueError, match="2 first-pass times for 1 texts"):
        tfidf_script.fastest_ms(["a"], [1.0, 2.0], lambda text: None)


def test_a_row_has_every_column_and_a_macro_f1_over_the_test_sets_intents() -> None:
    """Two test intents, no out-of-scope messages; the login message falls back (0.2 under 0.35): macro F1
    over the test's intents averages verify_invoice's 1.0 and login_issue's 0; ``macro_f1`` also averages
    out_of_scope's 0, a label only predicted, so it charges the one fallback twice."""
    test = _data(
        [("invoice a", "verify_invoice"), ("invoice b", "verify_invoice"), ("log in", "login_issue")]
    )
    ds = Dataset("tiny", "fixed split", ROOT / "nlu_data" / "config.yml", [(_data(TRAIN), test)])
    rows = [("verify_invoice", 0.9), ("verify_invoice", 0.8), ("login_issue", 0.2)]
    run = Run(
        scored=[
            Scored(ex, top, conf, "en", [], 1.0) for ex, (top, conf) in zip(test.examples, rows, strict=True)
        ],
        train_seconds=[2.0],
        threshold=0.35,
        extra={"model_size_mib": 1.5},
    )
    row = summarise(ds, run, wall=3.0)
    assert row["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert row["macro_f1_test_intents"] == 0.5
    assert row["macro_f1"] == pytest.approx(1 / 3, abs=1e-4)
    for column in ("in_scope_accuracy", "oos_recall", "train_seconds", "parse_ms_scoring", "model_size_mib"):
        assert column in row
    assert row["train_seconds"] == 2.0 and row["threshold_source"] == "config"


def test_the_plot_has_every_column_and_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six panels (accuracy, training, the call's p99, HTTP p99, memory, model size), the environments in the
    footer; a system not run and the script's missing server are labelled, not drawn as zero."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from benchmarks.rasa import plot

    drawn: list[Figure] = []
    save = Figure.savefig

    def keep(fig: Figure, *args: object, **kwargs: object) -> None:
        drawn.append(fig)
        save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    common = {"accuracy": 0.9, "in_scope_accuracy": 0.9, "oos_recall": 0.5, "train_seconds": 2.0}
    result = {
        "results": {
            "nlu_data": {
                "native": {
                    **common,
                    "parse_ms_scoring": {"p99": 1.2},
                    "parse_ms_http": {"p99": 4.0},
                    "server_peak_rss_mib": 530.0,
                    "model_size_mib": 1.2,
                },
                "tfidf-script": {
                    **common,
                    "parse_ms_scoring": {"p99": 1.5},
                    "script_peak_rss_mib": 735.0,
                    "model_size_mib": 17.0,
                },
            }
        },
        "environment_mib": {"native (.venv)": 1573.0, "rasa (.venv-rasa)": None},
    }
    plot(result, tmp_path / "compare.png")
    assert (tmp_path / "compare.png").stat().st_size > 0
    (fig,) = drawn
    titles = [ax.get_title() for ax in fig.axes]
    assert (
        len(titles) == 6 and any("memory" in t for t in titles) and any("Model on disk" in t for t in titles)
    )
    labels = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "no server" in labels and "not run" in labels and "not measured" not in labels
    memory = fig.axes[4]
    assert sorted(round(p.get_height()) for p in memory.patches) == [530, 735]
    footer = " ".join(t.get_text() for t in fig.texts)
    assert "Environments on disk: native (.venv) 1,573 MiB." in footer


def test_runs_on_different_machines_are_named_each_with_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``--keep`` run that re-measured one dataset on another CPU: the section names each run's machine and
    start, each row its run, and does not pass the last machine off as where every row was measured."""
    from benchmarks import report

    amd = {"cpu": "AMD EPYC", "cores": 2, "memory_gib": 23.5, "python": "3.11.7"}
    intel = {**amd, "cpu": "Intel Xeon"}
    row = {
        "accuracy": 0.9,
        "macro_f1_test_intents": 0.79351,
        "train_seconds": 2.0,
        "parse_ms_scoring": {"p50": 0.5, "p99": 1.0},
        "parse_ms_http": {"p50": 2.0, "p99": 4.0},
        "server_peak_rss_mib": 500.0,
        "model_size_mib": 1.0,
    }
    first = {"command": "python -m benchmarks.rasa", "load_average": [0.7], "started": "A", "machine": amd}
    second = {
        "command": "python -m benchmarks.rasa --datasets smp2019 --keep",
        "load_average": [0.2],
        "started": "B",
        "machine": intel,
    }
    result = {
        "measured_at": "2026-12-03 07:00:00 UTC",
        "machine": intel,
        "rasa_version": "3.6.21",
        "results": {"nlu_data": {"native": {**row, "run": 1}}, "smp2019": {"native": {**row, "run": 2}}},
        "runs": [first, second],
    }
    monkeypatch.setattr(report, "_load", lambda name: result if name == "rasa_compare" else {})
    text = " ".join(report.rasa_section())
    assert "run 1: `python -m benchmarks.rasa` (load average [0.7], started A, on AMD EPYC, 2 cores)" in text
    assert (
        "run 2: `python -m benchmarks.rasa --datasets smp2019 --keep` (load average [0.2], started B, on Intel Xeon"
        in text
    )
    assert "Last written on: Intel Xeon" in text and "Measured on:" not in text
    assert "| nlu_data (5-fold CV) (run 1) | triagebot (native) | 90.0 accuracy |" in text
    assert (
        "| SMP2019 (run 2) | triagebot (native) | 90.0 accuracy, macro F1 0.794 |" in text
    )  # its rare intents
    # one run: no run numbers, and the file's machine is the run's
    result.update(runs=[second], results={"smp2019": {"native": {**row, "run": 1}}})
    text = " ".join(report.rasa_section())
    assert "Measured on: Intel Xeon" in text and "run 1" not in text and "| SMP2019 | triagebot" in text


def test_a_kept_file_gives_its_machine_to_its_one_run_recorded_before_runs_named_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Of several such runs nothing says which machine ran which: they stay unnamed."""
    from benchmarks import rasa

    monkeypatch.setattr(rasa, "RESULTS", tmp_path)
    old = {"machine": {"cpu": "AMD EPYC"}, "runs": [{"command": "python -m benchmarks.rasa"}], "results": {}}
    (tmp_path / "rasa_compare.json").write_text(json.dumps(old), encoding="utf-8")
    kept = rasa._previous(True, "rasa_compare")
    assert kept["runs"][0]["machine"] == {"cpu": "AMD EPYC"} and "machine" not in kept
    old["runs"].append({"command": "python -m benchmarks.rasa --keep"})
    (tmp_path / "rasa_compare.json").write_text(json.dumps(old), encoding="utf-8")
    assert all("machine" not in run for run in rasa._previous(True, "rasa_compare")["runs"])
    assert rasa._previous(False, "rasa_compare") == {"results": {}, "not_run": [], "datasets": {}, "runs": []}
