"""The bot's decisions on the labelled conversations of nlu_data/eval/ (``triage eval --dialogue``): the
model is trained first when nlu_data/ changed, then every conversation runs through the real engine.
Writes benchmarks/results/dialogue_eval.json."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.common import ROOT


def main() -> int:
    triage = [sys.executable, "-m", "triagebot.cli"]
    subprocess.run([*triage, "train"], cwd=ROOT, check=True)
    report = ROOT / "benchmarks" / "results" / "dialogue_eval.json"
    return subprocess.run([*triage, "eval", "--dialogue", "--report", str(report)], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
