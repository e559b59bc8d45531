"""``triage serve``: the HTTP/websocket server."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.console import console, settings


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
    console.print(f"triagebot on http://{host}:{port}  (widget demo at /, API docs at /docs)")
    uvicorn.run(
        "triagebot.main:app",
        host=host,
        port=port,
        workers=workers,
        log_level=s.log_level.lower(),
        ws_ping_interval=20,
        ws_ping_timeout=20,
        factory=False,
    )
