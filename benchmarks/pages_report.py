"""The "Pages" section of docs/benchmarks.md, from benchmarks/results/pages.json (``benchmarks.pages``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks.common import read_result


def pages_section(machine: Callable[[dict[str, Any]], str]) -> list[str]:
    result = read_result("pages")
    if not result:
        return []
    out = [
        "## Pages: weight and time to interactive",
        "",
        f"Measured on: {machine(result)}. {result['browser']}; the server on loopback, so this is the pages' own "
        "cost (parse, run, first render), not the network's. Interactive: navigation start to the first usable "
        "control (the widget's message box, the console's sign-in form or, signed in, its conversation search).",
        "",
        "| page | JS + CSS bytes | gzipped | files | interactive ms p50 / p99 | DOMContentLoaded ms | load ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["pages"]:
        ms = row["interactive_ms"]
        out.append(
            f"| {row['page']} | {row['js_css_bytes']:,} | {row['js_css_gzip_bytes']:,} | {len(row['files'])} | "
            f"{ms['p50']:.0f} / {ms['p99']:.0f} | {row['dom_content_loaded_ms']:.0f} | {row['load_event_ms']:.0f} |"
        )
    return [*out, ""]
