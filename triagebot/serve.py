"""``triage serve``: the HTTP/websocket server.

The client address — what sign-in lockouts and the new-conversation limit count by — is the connecting
peer's unless it is one of ``TRIAGE_TRUSTED_PROXIES``: only then does uvicorn take ``X-Forwarded-For`` and
``X-Forwarded-Proto`` from the request. uvicorn's own default trusts them from loopback, so anything on the
same host (or a proxy that passes the header on unchecked) could choose its address.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bot.settings import Settings
from bot.terminal import console, settings
from handoff_gateway.cli import has_agents


def uvicorn_options(s: Settings) -> dict[str, Any]:
    """uvicorn's options from the settings: proxy headers trusted from configured proxies only; websocket
    pings (a peer that stops answering is dropped within 40 s) and compression."""
    trusted = [address.strip() for address in s.trusted_proxies.split(",") if address.strip()]
    return {
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted,
        "ws_ping_interval": 20,
        "ws_ping_timeout": 20,
        "ws_per_message_deflate": s.ws_compression,
    }


def banner(url: str, agents: bool | None) -> str:
    """What `triage serve` (and so `make run`) prints first: the pages, and with no agent yet how to see the
    first handoff."""
    lines = [
        f"triagebot on {url}",
        f"  widget demo    {url}/",
        f"  agent console  {url}/console",
        f"  API docs       {url}/docs",
    ]
    if agents is False:
        lines += [
            "",
            "No agent yet. To see a handoff, in another terminal:",
            "  .venv/bin/triage agents add --name wang --password 'choose-8+-chars'",
            f"then sign in at {url}/console, set yourself 在线 / online, and type 转人工 in the widget at {url}/",
        ]
    return "\n".join(lines)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default TRIAGE_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default TRIAGE_PORT, 8000).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (all share Redis).")] = 1,
) -> None:
    """Serve the API, the websocket and the web widget (http://127.0.0.1:8000 by default)."""
    import uvicorn

    s = settings()
    host, port = host or s.host, port or s.port
    console.print(banner(f"http://{host}:{port}", has_agents()))
    uvicorn.run(
        "triagebot.main:app",
        host=host,
        port=port,
        workers=workers,
        log_level=s.log_level.lower(),
        factory=False,
        **uvicorn_options(s),
    )
