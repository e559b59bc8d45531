"""The benchmark commands refuse a name they do not know before running anything (``benchmarks.nlu --help``
once started the 5-fold cross-validation, minutes of training, and then failed with a KeyError)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("module", "argv", "usage"),
    [
        (
            "benchmarks.nlu",
            ["--help"],
            "usage: python -m benchmarks.nlu [clinc150 smp2019 cv cost e5 e5-cost]",
        ),
        ("benchmarks.nlu", ["cost", "cvv"], "unknown benchmark 'cvv'"),
        ("benchmarks.kb", ["evaluate"], "usage: python -m benchmarks.kb [eval | scale | all]"),
    ],
)
def test_an_unknown_benchmark_is_refused_before_anything_runs(
    module: str, argv: list[str], usage: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert usage in done.stderr
    assert "Traceback" not in done.stderr
    assert "nlu benchmark:" not in done.stderr  # nothing started
