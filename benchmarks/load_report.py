"""The "Under load" section of docs/benchmarks.md, from benchmarks/results/load.json (``make bench-load``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks.common import delivery_row, read_result


def _ms(stats: dict[str, float]) -> str:
    if not stats:
        return "–"
    return f"{stats['p50']:.0f} / {stats['p99']:.0f}"


def _row(run: dict[str, Any]) -> str:
    bad = run["lost"] + run["duplicated"] + run["out_of_order"]
    idle = run.get("idle", {}).get("server_cpu_percent_of_machine")
    return (
        f"| {run['sockets']:,} | {run['processes']} | {run['offered_messages_per_second']:.0f} | "
        f"{run['messages_per_second']:.0f} | {_ms(run['reply_ms'])} | {_ms(run['offer_ms'])} | "
        f"{_ms(run['relay_user_to_agent_ms'])} | {_ms(run['relay_agent_to_user_ms'])} | "
        f"{run['lost']} / {run['duplicated']} / {run['out_of_order']}{' **!**' if bad else ''} | "
        f"{run['unanswered']} | {run['sockets_failed_to_open']} | {run['server_cpu_percent_of_machine']}% | "
        f"{'–' if idle is None else f'{idle}%'} | {run['server_kib_per_socket']:.0f} | {run['redis_clients']} | "
        f"{_gc(run.get('gc_full_pauses'))} |"
    )


def _gc(pauses: dict[str, Any] | None) -> str:
    if not pauses:
        return "–"
    if not pauses["count"]:
        return "0"
    longest = pauses["longest_at_most_ms"]
    return f"{pauses['count']}, {pauses['seconds']} s, ≤ {'> 2,500' if longest is None else longest} ms"


HEADER = [
    "| sockets | processes | offered msg/s | sent msg/s | bot reply ms p50 / p99 | offer ms | user→agent ms | "
    "agent→user ms | lost / dup / out of order | unanswered | sockets not opened | server CPU (machine) | "
    "idle CPU | server KiB per socket | Redis clients | full GC pauses: count, total, longest |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
]


def load_section(machine: Callable[[dict[str, Any]], str]) -> list[str]:
    """``machine``: report.py's one-line description of where a result was measured."""
    result = read_result("load")
    if not result:
        return []
    out = [
        "## Under load: thousands of widget sockets, 50 agents, two app processes",
        "",
        f"Measured on: {machine(result)}{' (a --quick smoke run: small sizes)' if result.get('quick') else ''}. "
        f"{result['server']}; {result['client']}. Each step: sockets arrive (500 a second), 50 agent consoles "
        "sign in and go online, then mixed traffic — KB questions, 1% urgent messages that go straight to an "
        "agent, who answers each user message and resolves after three — then the sockets are held idle with "
        f"{result['heartbeat_seconds']} s heartbeats. Every socket checks it saw seqs 1..N of its conversation "
        "exactly once, in order. `make bench-load` (`benchmarks/load.py`).",
        "",
    ]
    if result.get("sockets"):
        out += [
            "### Sockets held open with traffic (0.1 message per socket per second, at most 50 a second)",
            "",
            *HEADER,
        ]
        out += [_row(run) for run in result["sockets"]]
        out.append("")
    knee = result.get("knee")
    if knee:
        found = knee["knee_messages_per_second"]
        out += [
            f"### The knee: {knee['sockets']:,} sockets, the offered rate stepped up",
            "",
            (
                f"The bot reply p99 passes {knee['p99_target_ms']:.0f} ms at **{found} messages/s offered**"
                + (
                    f"; the last step under it delivered {knee['last_under_target']} messages/s."
                    if knee["last_under_target"]
                    else ", the first step."
                )
                if found
                else f"The reply p99 stayed under {knee['p99_target_ms']:.0f} ms at every step."
            ),
            "",
            *HEADER,
            *[_row(run) for run in knee["steps"]],
            "",
            *_what_limits(knee, result.get("machine", {}).get("cores", 0)),
        ]
        profile = knee.get("profile") or {}
        if profile.get("share_percent"):
            out += [
                f"Where one app process spends its time at the knee (py-spy, {profile['samples']:,} samples over "
                f"{profile['seconds']:.0f} s, each stack counted once under its innermost known part):",
                "",
                "| part | share of samples |",
                "|---|---|",
                *[f"| {part} | {share}% |" for part, share in profile["share_percent"].items()],
                "",
                "Top functions: "
                + "; ".join(f"`{name}` {share}%" for name, share in profile["top_functions"][:8])
                + ".",
                "",
            ]
        elif profile.get("skipped"):
            out += [f"Profile not taken: {profile['skipped']}.", ""]
    if result.get("gc"):
        runs = result["gc"]
        out += [
            f"### The garbage collector and websocket compression, {runs[0]['sockets']:,} sockets",
            "",
            "A full (generation 2) garbage collection walks every tracked object with the event loop stopped: "
            "the ~240,000 objects start-up loads (intent model, jieba dictionary, KB index, the encoder's "
            "vocabulary) and ~220 per open socket (coroutines, tasks, futures, the websocket's protocol "
            "objects). Under CPython's defaults a 5,000-socket run paused each process 11–15 times for "
            "250–1,000 ms — that was the reply p99, growing with the number of sockets. Shipped now: start-up "
            "objects frozen out of the collector (`TRIAGE_GC_FREEZE`), full collections considered ten times "
            "less often (`TRIAGE_GC_THRESHOLDS` 700,10,100), and websocket compression off "
            "(`TRIAGE_WS_COMPRESSION`: a zlib context per socket for frames of a few hundred bytes). Pauses "
            "are on `/metrics` as `triage_gc_pause_seconds`.",
            "",
            "| setting | " + HEADER[0].removeprefix("| "),
            "|---" + HEADER[1],
            *[f"| {run['setting']} " + _row(run) for run in runs],
            "",
        ]
    if result.get("processes"):
        runs = result["processes"]
        out += [
            f"### 1, 2 and 4 app processes, {runs[0]['sockets']:,} sockets, "
            f"{runs[0]['offered_messages_per_second']:.0f} messages/s offered",
            "",
            *HEADER,
            *[_row(run) for run in runs],
            "",
            "| processes | server CPU ms per message |",
            "|---|---|",
            *[f"| {run['processes']} | {run['server_cpu_ms_per_message']} |" for run in runs],
            "",
        ]
    if result.get("history"):
        out += [
            "### Reply latency by conversation length (all steps' samples)",
            "",
            "| events already in the conversation | p50 ms | p99 ms | samples |",
            "|---|---|---|---|",
            *[
                f"| {h['events_before']} | {h['p50']:.0f} | {h['p99']:.0f} | {h['samples']:,} |"
                for h in result["history"]
            ],
            "",
        ]
    out += ["![load](../benchmarks/results/load.png)", ""]
    return out


def _what_limits(knee: dict[str, Any], cores: int) -> list[str]:
    """The CPU a message costs at the last step under the target, and what the goal would take."""
    under = [s for s in knee["steps"] if s["reply_ms"]["p99"] <= knee["p99_target_ms"]]
    if not under:
        return []
    step = under[-1]
    ms = step["server_cpu_ms_per_message"]
    return [
        f"What limits it is CPU: at {step['offered_messages_per_second']:.0f} messages/s the app processes "
        f"used {step['server_cpu_percent_of_machine']}% of the machine, {ms} ms of CPU per message (NLU, KB "
        f"search, Redis, websocket frames, the desk). 500 messages/s at that cost is "
        f"{500 * ms / 1000:.1f} cores of app CPU alone, on a machine of {cores or '?'} shared with redis-server and "
        "the load client: the goal needs more cores (more processes on more machines, docs/operations.md), "
        "not a different design; on these two cores, four processes did worse than two (the 1/2/4-process "
        "table below).",
        "",
    ]


def load_targets() -> list[tuple[str, str, str, bool | None]]:
    """Issue 12's load goals as rows of the Targets table: (target, goal, measured, met)."""
    result = read_result("load")
    if not result or result.get("quick"):
        return []
    rows: list[tuple[str, str, str, bool | None]] = []
    knee = result.get("knee")
    if knee:
        found = knee["knee_messages_per_second"]
        rows.append(
            (
                "load: messages/s before the reply p99 passes 200 ms, two processes",
                "≥ 500 messages/s at 5,000 sockets",
                (
                    f"p99 {knee['steps'][0]['reply_ms']['p99']:.0f} ms already at {found}/s, the first step "
                    f"({knee['sockets']:,} sockets)"
                    if found and not knee["last_under_target"]
                    else f"passes at {found}/s ({knee['sockets']:,} sockets)"
                    if found
                    else "not reached"
                ),
                False if found and found < 500 else None if not found else True,
            )
        )
    big = [r for r in result.get("sockets", []) if r["sockets"] >= 9_000 and r.get("idle")]
    if big:
        idle = big[0]["idle"]["server_cpu_percent_of_machine"]
        rows.append(
            (
                f"load: {big[0]['sockets']:,} sockets held open with heartbeats",
                "< 10 % CPU",
                f"{idle} % of the machine",
                idle < 10,
            )
        )
    every = [
        *result.get("sockets", []),
        *(knee or {}).get("steps", []),
        *result.get("processes", []),
        *result.get("gc", []),
    ]
    if every:
        target = "load: events lost / duplicated / out of order, every socket, every step"
        rows.append(delivery_row(target, every, "sockets", "sockets"))
    return rows
