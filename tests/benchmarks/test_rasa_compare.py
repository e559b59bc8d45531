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
from benchmarks.rasa import Dataset, log_floor, run_script, without_encoder
from bot.nlu.config import PipelineConfig
from bot.nlu.evaluation import THRESHOLD_GRID
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
