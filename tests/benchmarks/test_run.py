"""`make bench` away from the datasets: a benchmark that cannot run says so and is reported as skipped, never
as ok (a clone without ../shared/ used to print "skipped" and then "ok")."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import run


@pytest.mark.parametrize("dataset", ["clinc150", "smp2019"])
def test_a_benchmark_without_its_dataset_is_reported_as_skipped(
    dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRIAGE_SHARED_DIR", str(tmp_path))

    outcome = run.run_step("1/1", dataset, ["benchmarks.nlu", dataset])

    assert outcome == "skipped"
    err = capfd.readouterr().err
    assert f"skipped: {tmp_path / 'datasets'}" in err and "TRIAGE_SHARED_DIR" in err
    assert "[1/1] SKIPPED" in err and "[1/1] ok" not in err


def test_a_failing_benchmark_is_reported_as_failed(capfd: pytest.CaptureFixture[str]) -> None:
    assert run.run_step("1/1", "missing", ["benchmarks.no_such_benchmark"]) == "failed"
    assert "FAILED (exit 1)" in capfd.readouterr().err
