"""Shared helpers for the benchmark scripts: where things are, machine facts, writing results."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SHARED = Path(os.environ.get("TRIAGE_SHARED_DIR", ROOT.parent / "shared"))
DATASETS = SHARED / "datasets"
# The exit status of a benchmark that could not run here (a dataset or an optional package missing):
# `make bench` reports the step as skipped, with the reason the step printed, and keeps its old figures.
SKIPPED = 75


def skip(reason: str) -> NoReturn:
    """End this benchmark as not run, saying why and what to do."""
    print(f"skipped: {reason}", file=sys.stderr, flush=True)
    raise SystemExit(SKIPPED)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import psutil

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def current_rss_mib() -> float:
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p99": 0.0, "mean": 0.0}
    return {
        "p50": round(float(np.percentile(values, 50)), 3),
        "p99": round(float(np.percentile(values, 99)), 3),
        "mean": round(float(np.mean(values)), 3),
    }


def read_result(name: str) -> dict[str, Any] | None:
    """benchmarks/results/<name>.json, or None when that benchmark has not run here."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        **result,
    }
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    return path


def dir_size_mib(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 2)


def delivery_row(target: str, runs: list[dict], counted: str, unit: str) -> tuple[str, str, str, bool]:
    """A Targets-table row: events lost / duplicated / out of order summed over ``runs`` (goal 0 / 0 / 0),
    with how many ``unit`` were checked (each run's ``counted`` field)."""
    bad = [sum(r[k] for r in runs) for k in ("lost", "duplicated", "out_of_order")]
    checked = f" ({sum(r[counted] for r in runs):,} {unit})"
    return target, "0 / 0 / 0", " / ".join(str(b) for b in bad) + checked, not any(bad)


def environment_sizes(env: dict[str, float | None]) -> str:
    """``name 1,573 MiB, …`` for each measured environment of a Rasa comparison (the table's note and the plot's
    footer)."""
    return ", ".join(f"{name} {mib:,.0f} MiB" for name, mib in env.items() if mib is not None)
