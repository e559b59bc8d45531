"""``make bench``: every benchmark in its own process (so peak memory is its own), then the report."""

from __future__ import annotations

import subprocess
import sys
import time

from benchmarks.common import ROOT, SKIPPED

STEPS = [
    ("NLU: training cost and parse latency", ["benchmarks.nlu", "cost"]),
    ("NLU: 5-fold cross-validation on nlu_data", ["benchmarks.nlu", "cv"]),
    ("NLU: CLINC150 (English, 150 intents + OOS)", ["benchmarks.nlu", "clinc150"]),
    ("NLU: SMP2019 (Chinese)", ["benchmarks.nlu", "smp2019"]),
    ("KB: evaluation queries", ["benchmarks.kb", "eval"]),
    ("KB: index scale, 10k and 100k articles", ["benchmarks.kb", "scale"]),
    ("Chat: reply latency, 200 and 1,000 users arriving, one and two processes", ["benchmarks.chat"]),
    ("Redis: commands and round trips per chat message", ["benchmarks.redis_cost"]),
    ("Gateway: handoff to offer, relay across two processes, accept race", ["benchmarks.gateway"]),
    ("Event loop: /healthz latency during sign-ins and a KB rebuild", ["benchmarks.loop_lag"]),
    (
        "Sockets: Redis connections at 100/1k/5k sockets, recovery after a Redis restart",
        ["benchmarks.sockets"],
    ),
    (
        "WeCom: callback acknowledgement and answers, 200 and 500 members, one and two processes; outbound sends/s",
        ["benchmarks.platforms"],
    ),
    ("Dialogue: the bot's decisions on labelled and held-out conversations", ["benchmarks.dialogue"]),
    ("Pages: weight and time to interactive of the widget, console and analytics", ["benchmarks.pages"]),
    (
        "Faults: Redis restarted and crashed under traffic, appendfsync everysec and always",
        ["benchmarks.faults"],
    ),
]


def run_step(number: str, title: str, module: list[str]) -> str:
    """Run one benchmark in its own process: "ok", "skipped" (it could not run here) or "failed"."""
    print(f"[{number}] {title} …", file=sys.stderr, flush=True)
    started = time.perf_counter()
    code = subprocess.run([sys.executable, "-m", *module], cwd=ROOT).returncode
    outcome = "ok" if code == 0 else "skipped" if code == SKIPPED else "failed"
    shown = {"ok": "ok", "skipped": "SKIPPED (the reason is above)", "failed": f"FAILED (exit {code})"}[
        outcome
    ]
    print(f"[{number}] {shown} in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return outcome


def main() -> int:
    only = set(sys.argv[1:])
    outcomes: dict[str, list[str]] = {"ok": [], "skipped": [], "failed": []}
    for i, (title, module) in enumerate(STEPS, 1):
        if not only or module[-1] in only:
            outcomes[run_step(f"{i}/{len(STEPS)}", title, module)].append(title)
    subprocess.run([sys.executable, "-m", "benchmarks.report"], cwd=ROOT, check=True)
    if outcomes["skipped"]:
        print(
            "skipped: "
            + "; ".join(outcomes["skipped"])
            + ". docs/benchmarks.md keeps these sections' earlier "
            "figures, each dated on its 'Measured on' line; put the datasets in ../shared/datasets (or set "
            "TRIAGE_SHARED_DIR) to measure them here.",
            file=sys.stderr,
        )
    if outcomes["failed"]:
        print("failed: " + "; ".join(outcomes["failed"]), file=sys.stderr)
    return 1 if outcomes["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
