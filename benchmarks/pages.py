"""Page weight and time to interactive of the widget, the agent console and the analytics page, in a real
browser (Debian's chromium through Playwright) against a real app process on loopback.

Weight: the JS and CSS bytes each page loads (as served, and gzip-compressed as a CDN or proxy would send
them). Time to interactive: from navigation start to the moment the page's first control can be used — the
widget's message box, the console's sign-in form, and (signed in) its conversation list — each from a cold
browser context, ``LOADS`` times.

``python -m benchmarks.pages`` (part of ``make bench``) writes benchmarks/results/pages.json.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aredis

from benchmarks.common import percentiles, skip, write_result
from benchmarks.servers import app_servers
from handoff_gateway.agents import AgentStore

LOADS = 15
CHROMIUM = Path(os.environ.get("TRIAGE_CHROMIUM", "/usr/bin/chromium"))
PASSWORD = "password-123"


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    ready: str  # the selector of the first usable control
    signed_in: bool = False


PAGES = [
    Page("widget (demo page, panel open)", "/", ".tb-input"),
    Page("agent console: sign-in", "/console", "#login-name"),
    Page("agent console: signed in", "/console", "#list-search", signed_in=True),
    Page("analytics (supervisor)", "/console/analytics", "#since", signed_in=True),
]


async def _supervisor(redis_url: str, prefix: str) -> None:
    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        await AgentStore(client, prefix).add("pages-boss", PASSWORD, "supervisor", ("zh", "en"), 5)
    finally:
        await client.aclose()


def _sign_in(url: str) -> str:
    """An init script that puts a supervisor's session where the console keeps it (sessionStorage)."""
    login = httpx.post(
        f"{url}/api/v1/agents/login", json={"name": "pages-boss", "password": PASSWORD}, timeout=30
    )
    login.raise_for_status()
    return f"sessionStorage.setItem('agent-token', {login.json()['token']!r});"


def _load(browser: Any, url: str, page_def: Page, session: str) -> dict[str, Any]:
    context = browser.new_context(locale="zh-CN")
    if page_def.signed_in:
        context.add_init_script(session)
    page = context.new_page()
    assets: set[str] = set()
    page.on(
        "response",
        lambda r: assets.add(r.url) if r.request.resource_type in ("script", "stylesheet") and r.ok else None,
    )
    page.goto(url + page_def.path, wait_until="commit")
    page.wait_for_selector(page_def.ready, state="visible", timeout=30_000)
    interactive = page.evaluate(
        """selector => {
            const e = document.querySelector(selector);
            return e && !e.disabled ? performance.now() : null;
        }""",
        page_def.ready,
    )
    page.wait_for_load_state("load")
    timing = page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " return {dom: n.domContentLoadedEventEnd, load: n.loadEventEnd}; }"
    )
    context.close()
    return {"interactive_ms": interactive, **timing, "assets": assets}


def _weight(url: str, resources: set[str]) -> dict[str, Any]:
    """The page's JS and CSS, as served and gzip-compressed."""
    files: dict[str, dict[str, int]] = {}
    with httpx.Client(timeout=30) as http:
        for resource in sorted(resources):
            body = http.get(resource).content
            files[resource.removeprefix(url)] = {
                "bytes": len(body),
                "gzip_bytes": len(gzip.compress(body, 9)),
            }
    return {
        "files": files,
        "js_css_bytes": sum(f["bytes"] for f in files.values()),
        "js_css_gzip_bytes": sum(f["gzip_bytes"] for f in files.values()),
    }


def main() -> None:
    if not CHROMIUM.exists():
        skip(f"no chromium at {CHROMIUM} (apt-get install chromium, or set TRIAGE_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    rows = []
    with app_servers(1) as cluster:
        url = cluster.urls[0]
        asyncio.run(_supervisor(cluster.redis_url, cluster.prefix))
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            session = _sign_in(url)
            for page_def in PAGES:
                loads = [_load(browser, url, page_def, session) for _ in range(LOADS)]
                interactive = [x["interactive_ms"] for x in loads if x["interactive_ms"] is not None]
                rows.append(
                    {
                        "page": page_def.name,
                        "path": page_def.path,
                        "ready_when": page_def.ready,
                        "loads": len(loads),
                        "interactive_ms": percentiles(interactive),
                        "dom_content_loaded_ms": round(statistics.median(x["dom"] for x in loads), 1),
                        "load_event_ms": round(statistics.median(x["load"] for x in loads), 1),
                        **_weight(url, loads[-1]["assets"]),
                    }
                )
                print(
                    f"  {page_def.name}: interactive p50 {rows[-1]['interactive_ms']['p50']} ms, "
                    f"{rows[-1]['js_css_bytes']:,} B JS+CSS ({rows[-1]['js_css_gzip_bytes']:,} gzipped)",
                    file=sys.stderr,
                    flush=True,
                )
            browser.close()
    write_result(
        "pages",
        {
            "browser": f"chromium (headless, {CHROMIUM}), a fresh context per load, same machine as the server",
            "pages": rows,
        },
    )


if __name__ == "__main__":
    main()
