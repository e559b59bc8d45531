"""The "Faults" section of docs/benchmarks.md, from benchmarks/results/faults.json (benchmarks/faults.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from benchmarks.common import RESULTS


def faults_section(machine: Callable[[dict[str, Any]], str]) -> list[str]:
    path = RESULTS / "faults.json"
    if not path.exists():
        return []
    result = json.loads(path.read_text(encoding="utf-8"))
    out = [
        "## Faults: Redis restarted and crashed under traffic",
        "",
        f"Measured on: {machine(result)}. `make bench-faults`: {result['scenario']}. Append-only persistence; "
        "*restart* is SIGTERM (Redis writes and fsyncs the file on the way out), *crash* is SIGKILL. "
        "Lost: acknowledged to the client but not in Redis afterwards. Recovery: from the fault until every "
        "client had a message acknowledged again (p50 / p99 over the runs). No socket was reopened by a client.",
        "",
        "| appendfsync | fault | runs | acknowledged | lost (acknowledged before the fault) | duplicated | "
        "out of order | recovery s | sockets reopened | runs that stalled |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in result["cases"]:
        fault = "crash" if case["restart"] == "SIGKILL" else "restart"
        recovery = case["recovery_s"]
        out.append(
            f"| {case['appendfsync']} | {fault} | {case['runs']} | {case['messages_acknowledged']:,} | "
            f"{case['lost']} ({case['lost_acknowledged_before_restart']}) | {case['duplicated']} | "
            f"{case['out_of_order']} | {recovery['p50']:.2f} / {recovery['p99']:.2f} | "
            f"{case['socket_reconnects']} | {len(case['failed_runs'])} |"
        )
    if any(case["failed_runs"] for case in result["cases"]):
        out += [
            "",
            "A stalled run is one where a client never got the echo of a message: Redis lost acknowledged "
            "writes, the transcript's sequence numbers were reused, and the sockets, which had already seen "
            "those numbers, skip the new events. That is what `appendfsync everysec` allows on a crash (Redis "
            "answers before its write reaches the file while a background fsync runs); run Redis with "
            "`appendfsync always` (docs/operations.md).",
        ]
    out.append("")
    return out
