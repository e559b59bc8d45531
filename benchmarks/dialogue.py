"""The bot's decisions on the labelled conversations of nlu_data/eval/ (``triage eval --dialogue``): the
model is trained first when nlu_data/ changed, then every conversation runs through the real engine.
Writes benchmarks/results/dialogue_eval.json."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from benchmarks.common import RESULTS, ROOT, machine


def main() -> int:
    triage = [sys.executable, "-m", "triagebot.cli"]
    subprocess.run([*triage, "train"], cwd=ROOT, check=True)
    report = RESULTS / "dialogue_eval.json"
    rc = subprocess.run([*triage, "eval", "--dialogue", "--report", str(report)], cwd=ROOT).returncode
    if report.exists():  # the machine facts every other result carries, for docs/benchmarks.md
        result = json.loads(report.read_text(encoding="utf-8"))
        result = {"measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(), **result}
        report.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return rc


if __name__ == "__main__":
    sys.exit(main())
