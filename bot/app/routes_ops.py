"""Health, readiness, metrics, the demo page and knowledge-base article pages."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.app.deps import services
from bot.app.errors import REDIS_DOWN
from bot.app.schemas import ErrorOut
from bot.engine import Services
from bot.errors import NotFound
from bot.kb import page as kb_page_view

router = APIRouter()
READY_PING_S = 0.5  # /readyz answers within a second whatever Redis does


@router.get("/healthz", tags=["ops"])
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", tags=["ops"], responses={503: {"description": "Not ready; see 'checks'"}})
async def readyz(request: Request) -> JSONResponse:
    """Redis reachable, NLU model and KB index loaded."""
    svc: Services | None = getattr(request.app.state, "services", None)
    checks: dict[str, Any] = {"nlu": bool(svc and svc.nlu.intents), "kb": bool(svc and svc.kb.index.articles)}
    try:
        # Bounded: a frozen Redis accepts the connection and never answers, and a probe must not hang.
        checks["redis"] = bool(svc and await asyncio.wait_for(svc.store.redis.ping(), READY_PING_S))
    except (*REDIS_DOWN, TimeoutError):
        checks["redis"] = False
    ready = all(checks.values())
    body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": checks}
    if svc and (degraded := getattr(svc.nlu, "degraded", None)):  # Rasa down: native answers, still ready
        body["degraded"] = {"nlu": degraded}
    return JSONResponse(
        body,
        status_code=200 if ready else 503,
        headers=None if ready else {"Retry-After": "2"},
    )


@router.get("/metrics", tags=["ops"], response_class=Response)
async def metrics(svc: Annotated[Services, Depends(services)]) -> Response:
    """Prometheus metrics: messages, intents, fallbacks, handoffs by reason and severity, answers, latencies."""
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/api/v1/kb/{article_id}",
    tags=["kb"],
    responses={404: {"model": ErrorOut, "description": "No article with this id"}},
)
async def kb_article(article_id: str, svc: Annotated[Services, Depends(services)]) -> dict[str, Any]:
    """One knowledge-base article."""
    article = svc.kb.article(article_id)
    if article is None:
        raise NotFound(f"no article {article_id!r}")
    return {**article.to_dict(), "steps": article.steps}


@router.get("/kb/{article_id}", response_class=HTMLResponse, include_in_schema=False)
async def kb_page(
    article_id: str, request: Request, svc: Annotated[Services, Depends(services)], script: str | None = None
) -> HTMLResponse:
    """The article as a page in the reader's script (``?script=Hant-HK``, else Accept-Language)."""
    article = svc.kb.article(article_id)
    headers = {"Content-Security-Policy": kb_page_view.CSP, "X-Content-Type-Options": "nosniff"}
    if article is None:
        return HTMLResponse("<!doctype html><h1>404</h1>", status_code=404, headers=headers)
    shown = kb_page_view.reader_script(script, request.headers.get("accept-language", ""))
    back = kb_page_view.back_link(request.headers.get("referer"))
    return HTMLResponse(kb_page_view.render(article, shown, back), headers=headers)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def demo_page() -> HTMLResponse:
    from bot.app import STATIC

    return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))
