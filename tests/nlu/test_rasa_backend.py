"""The ``rasa`` backend against a local server that speaks Rasa 3.6's ``POST /model/parse``: the reply is
mapped and enriched with our language, entities, severity and sentiment, and every way Rasa can fail — a
401, a 5xx, a timeout, a dead port, a reply that is not a parse — is answered by the native pipeline, logged
once, counted, and shown by /readyz."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.contracts.parse import Parse
from bot.cpu import CpuPool
from bot.kb.search import KnowledgeBase
from bot.nlu.backend import NLUBackend, ParseContext
from bot.nlu.pipeline import NLUPipeline
from bot.nlu.rasa_backend import RasaBackend, RasaUnavailable
from bot.settings import Settings
from tests.conftest import TODAY
from tests.live import free_port
from tests.rasa_token import AUTH
from triagebot.app import create_app

TOKEN = "s3cret-token"


def rasa_reply(text: str, ranking: list[tuple[str, float]], fallback: float | None = None) -> dict[str, Any]:
    """A reply shaped like Rasa 3.6.21's (DIET + FallbackClassifier): when the fallback fired, ``intent`` is
    nlu_fallback at the threshold and heads the ranking."""
    intents = [{"name": n, "confidence": c} for n, c in ranking]
    if fallback is not None:
        intents.insert(0, {"name": "nlu_fallback", "confidence": fallback})
    return {
        "text": text,
        "intent": intents[0],
        "entities": [],
        "text_tokens": [[0, len(text)]],
        "intent_ranking": intents,
        "response_selector": {
            "all_retrieval_intents": [],
            "default": {
                "response": {
                    "responses": None,
                    "confidence": 0.0,
                    "intent_response_key": None,
                    "utter_action": "utter_None",
                },
                "ranking": [],
            },
        },
    }


@dataclass
class FakeRasa:
    """What the server answers next (``mode``) and what it was sent."""

    port: int
    mode: str = "ok"
    reply: dict[str, Any] | None = None
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _app(fake: FakeRasa) -> Starlette:
    async def parse(request: Request) -> Response:
        body = await request.json()
        fake.received.append({"token": request.query_params.get("token"), "text": body.get("text")})
        if request.query_params.get("token") != TOKEN or fake.mode == "401":
            return JSONResponse(
                {
                    "version": "3.6.21",
                    "status": "failure",
                    "message": "User is not authenticated.",
                    "reason": "NotAuthenticated",
                    "details": {},
                    "help": None,
                    "code": 401,
                },
                status_code=401,
            )
        if fake.mode == "500":
            return PlainTextResponse("Internal Server Error", status_code=500)
        if fake.mode == "409":
            return JSONResponse({"status": "failure", "reason": "Conflict", "code": 409}, status_code=409)
        if fake.mode == "slow":
            await asyncio.sleep(1.0)
        if fake.mode == "garbage":
            return PlainTextResponse("<html>proxy error</html>")
        return JSONResponse(fake.reply or rasa_reply(body["text"], [("greet", 0.9), ("thanks", 0.05)]))

    return Starlette(routes=[Route("/model/parse", parse, methods=["POST"])])


@pytest.fixture(scope="module")
def fake_rasa() -> Iterator[FakeRasa]:
    fake = FakeRasa(free_port())
    server = uvicorn.Server(uvicorn.Config(_app(fake), host="127.0.0.1", port=fake.port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the fake Rasa server did not start"
        time.sleep(0.02)
    yield fake
    server.should_exit = True
    thread.join(5)


@pytest.fixture
def rasa(fake_rasa: FakeRasa) -> Iterator[FakeRasa]:
    fake_rasa.mode, fake_rasa.reply = "ok", None
    fake_rasa.received.clear()
    yield fake_rasa


@pytest.fixture
def degraded() -> list[str]:
    return []


@pytest.fixture
def backend(rasa: FakeRasa, nlu: NLUPipeline, degraded: list[str]) -> Iterator[RasaBackend]:
    b = RasaBackend(rasa.url, nlu, TOKEN, timeout=0.3, retry_after=0.0, on_degraded=degraded.append)
    yield b
    b.close()


def parse_both(backend: RasaBackend, text: str) -> tuple[Parse, Parse]:
    """The same text through ``parse`` (async) and ``parse_now`` (sync)."""
    context = ParseContext(today=TODAY)

    async def run() -> Parse:
        try:
            return await backend.parse(text, context)
        finally:
            await backend.aclose()

    return asyncio.run(run()), backend.parse_now(text, context)


def test_rasa_classifies_and_our_pipeline_adds_the_rest(
    backend: RasaBackend, rasa: FakeRasa, nlu: NLUPipeline
) -> None:
    text = "发票代码044031900111查验失败，全公司都验不了，太坑了"
    rasa.reply = rasa_reply(text, [("invoice_verification_failed", 0.91), ("system_outage", 0.05)])
    native = nlu.parse_typed(text, TODAY)
    assert isinstance(backend, NLUBackend)
    for parsed in parse_both(backend, text):
        assert parsed.intent.name == "invoice_verification_failed" and parsed.intent.confidence == 0.91
        assert [r.name for r in parsed.intent_ranking] == ["invoice_verification_failed", "system_outage"]
        assert (parsed.language, parsed.script) == (native.language, native.script) == ("zh", "Hans")
        assert parsed.entities == native.entities and {e.entity for e in parsed.entities} >= {"invoice_code"}
        assert parsed.sentiment == native.sentiment and parsed.sentiment.label == "negative"
        assert parsed.severity.level.value in ("urgent", "important")
        assert not parsed.ambiguous
    assert rasa.received == [{"token": TOKEN, "text": text}] * 2
    assert backend.degraded is None


@pytest.mark.parametrize(
    ("text", "ranking", "fallback", "intent", "ambiguous"),
    [
        # Rasa's FallbackClassifier fired: nlu_fallback, and its entry is not part of our ranking
        ("嗯嗯", [("greet", 0.2), ("thanks", 0.1)], 0.35, "nlu_fallback", False),
        # ... and it has the last word where its threshold is above ours (greet 0.5 passes our 0.35)
        ("嗯嗯", [("greet", 0.5), ("thanks", 0.1)], 0.6, "nlu_fallback", False),
        # our threshold decides too (Rasa ran with another one)
        ("嗯嗯", [("greet", 0.3), ("thanks", 0.1)], None, "nlu_fallback", False),
        # the top two too close: asked which one, not a fallback
        (
            "导出失败还是登录不了",
            [("export_failed", 0.48), ("login_failed", 0.45)],
            None,
            "export_failed",
            True,
        ),
        # an out_of_scope class falls back like the native pipeline's
        ("今天天气怎么样", [("out_of_scope", 0.9), ("greet", 0.05)], None, "nlu_fallback", False),
    ],
)
def test_fallback_and_ambiguity_follow_our_rules(
    backend: RasaBackend,
    rasa: FakeRasa,
    text: str,
    ranking: list[tuple[str, float]],
    fallback: float | None,
    intent: str,
    ambiguous: bool,
) -> None:
    rasa.reply = rasa_reply(text, ranking, fallback)
    parsed = backend.parse_now(text, ParseContext(today=TODAY))
    assert parsed.intent.name == intent and parsed.ambiguous is ambiguous
    assert [r.name for r in parsed.intent_ranking] == [n for n, _ in ranking]


def test_the_enrichment_runs_off_the_event_loop(rasa: FakeRasa, nlu: NLUPipeline) -> None:
    """Language, entities, severity and sentiment on Rasa's answer are CPU work: they run in the CPU pool, as
    the native pipeline's parse does, never on the loop that serves every other connection."""
    text = "发票查验失败"
    rasa.reply = rasa_reply(text, [("invoice_verification_failed", 0.91), ("system_outage", 0.05)])
    threads: list[str] = []

    class Recording(CpuPool):
        async def run(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            def call() -> Any:
                threads.append(threading.current_thread().name)
                return fn(*args, **kwargs)

            return await super().run(call)

    pool = Recording(1)
    backend = RasaBackend(rasa.url, nlu, TOKEN, timeout=2.0, cpu=pool)

    async def run() -> Parse:
        try:
            return await backend.parse(text, ParseContext(today=TODAY))
        finally:
            await backend.aclose()

    try:
        parsed = asyncio.run(run())
    finally:
        pool.shutdown()
    assert parsed.intent.name == "invoice_verification_failed" and backend.degraded is None
    assert len(threads) == 1 and threads[0].startswith("triage-cpu")


def test_entities_rasa_found_are_kept_where_ours_found_none(backend: RasaBackend, rasa: FakeRasa) -> None:
    text = "报销单R20241105001在张三那里卡住了"
    reply = rasa_reply(text, [("approval_flow_issue", 0.8)])
    start = text.index("张三")
    reply["entities"] = [
        {
            "entity": "person",
            "start": start,
            "end": start + 2,
            "value": "张三",
            "extractor": "DIETClassifier",
            "confidence_entity": 0.97,
        }
    ]
    rasa.reply = reply
    parsed = backend.parse_now(text, ParseContext(today=TODAY))
    person = [e for e in parsed.entities if e.entity == "person"]
    assert [(e.text, e.extractor) for e in person] == [("张三", "DIETClassifier")]


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("401", "unauthorized"),
        ("500", "server_error"),
        ("slow", "timeout"),
        ("409", "bad_response"),
        ("garbage", "bad_response"),
        ("dead", "unreachable"),
    ],
)
def test_a_failing_rasa_is_answered_by_the_native_pipeline(
    backend: RasaBackend,
    rasa: FakeRasa,
    nlu: NLUPipeline,
    degraded: list[str],
    caplog: pytest.LogCaptureFixture,
    mode: str,
    reason: str,
) -> None:
    rasa.mode = mode
    if mode == "dead":
        backend.url = f"http://127.0.0.1:{free_port()}"
    text = "发票查验失败，提示查验结果不一致"
    with caplog.at_level(logging.WARNING, logger="bot.nlu.rasa_backend"):
        for parsed in (*parse_both(backend, text), backend.parse_now(text, ParseContext(today=TODAY))):
            assert parsed == nlu.parse_typed(text, TODAY)
    assert degraded == [reason] * 3
    assert backend.degraded is not None and backend.degraded.startswith(reason)
    warnings = [r for r in caplog.records if r.name == "bot.nlu.rasa_backend"]
    assert len(warnings) == 1 and not warnings[0].exc_info  # one line per change of state, no traceback

    rasa.mode = "ok"  # Rasa is back: the next parse is Rasa's again
    backend.url = rasa.url
    assert backend.parse_now("你好", ParseContext(today=TODAY)).intent.name == "greet"
    assert backend.degraded is None


def test_after_a_failure_rasa_is_left_alone_for_a_while(
    rasa: FakeRasa, nlu: NLUPipeline, degraded: list[str]
) -> None:
    backend = RasaBackend(rasa.url, nlu, TOKEN, timeout=0.3, retry_after=60, on_degraded=degraded.append)
    rasa.mode = "slow"
    started = time.perf_counter()
    for _ in range(5):
        backend.parse_now("你好")
    assert time.perf_counter() - started < 0.3 * 2 + 1.0  # one timeout, not five
    assert len(rasa.received) == 1 and degraded == ["timeout"] * 5
    backend.close()


def test_strict_mode_raises_instead_of_falling_back(rasa: FakeRasa, nlu: NLUPipeline) -> None:
    backend = RasaBackend(rasa.url, nlu, "wrong-token", strict=True)
    with pytest.raises(RasaUnavailable, match="TRIAGE_RASA_TOKEN") as caught:
        backend.parse_now("你好")
    assert caught.value.reason == "unauthorized"
    backend.close()


def test_the_app_reports_a_degraded_rasa_in_readyz_and_metrics(
    settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase, rasa: FakeRasa
) -> None:
    configured = settings.model_copy(
        update={"nlu_backend": "rasa", "rasa_url": rasa.url, "rasa_token": SecretStr(TOKEN)}
    )
    with TestClient(create_app(configured, nlu=nlu, kb=knowledge_base)) as client:
        assert (
            client.post("/model/parse", headers=AUTH, json={"text": "你好"}).json()["intent"]["name"]
            == "greet"
        )
        assert "degraded" not in client.get("/readyz").json()
        rasa.mode = "500"
        parsed = client.post("/model/parse", headers=AUTH, json={"text": "发票查验失败"}).json()
        assert parsed["intent"]["name"] == nlu.parse("发票查验失败")["intent"]["name"]
        ready = client.get("/readyz")
        assert ready.status_code == 200  # the native pipeline still answers
        assert ready.json()["degraded"]["nlu"].startswith("server_error since ")
        metrics = client.get("/metrics").text
        assert 'triage_nlu_degraded_total{backend="rasa",reason="server_error"} 1.0' in metrics


def test_evaluation_scores_the_ranking_rasa_returned(backend: RasaBackend, rasa: FakeRasa) -> None:
    """``triage eval --backend rasa`` scores each example on Rasa's top intent before the fallback."""
    from bot.nlu.rasa_eval import score_backend
    from bot.nlu.training_data import Example

    rasa.reply = rasa_reply("x", [("greet", 0.3), ("thanks", 0.1)], fallback=0.35)
    [scored] = score_backend(backend, [Example("你好呀", "greet")])
    assert (scored.top, scored.confidence, scored.language) == ("greet", 0.3, "zh")
    assert scored.parse_ms > 0


def test_a_served_token_never_looks_like_an_option() -> None:
    """`rasa run --auth-token TOKEN`: a token starting with "-" was read as another option (1 in 64 runs)."""
    from bot.nlu.rasa_project import new_token

    assert all(not new_token().startswith("-") and new_token().isalnum() for _ in range(2000))
