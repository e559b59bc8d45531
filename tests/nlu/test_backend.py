"""The NLU backend interface: the native pipeline satisfies it and parses off the event loop, and the engine
works with a backend that returns only what the interface promises (the bare minimum of a Parse)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from fastapi.testclient import TestClient

from bot.contracts.parse import Intent, Parse
from bot.cpu import CpuPool
from bot.kb.search import KnowledgeBase
from bot.nlu.backend import NativeBackend, NLUBackend, ParseContext
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from tests.app.conftest import Chat
from tests.rasa_token import AUTH
from triagebot.app import create_app


async def test_the_native_pipeline_is_a_backend_and_parses_off_the_loop(nlu: NLUPipeline) -> None:
    pool = CpuPool(1)
    threads: list[str] = []
    backend = NativeBackend(nlu, pool)
    original = backend.parse_now

    def spy(text: str, context: ParseContext | None = None) -> Parse:
        threads.append(threading.current_thread().name)
        return original(text, context)

    backend.parse_now = spy  # type: ignore[method-assign]
    try:
        assert isinstance(backend, NLUBackend)
        parsed = await backend.parse(
            "发票查验失败，提示查验结果不一致", ParseContext(previous_script="zh-Hans")
        )
        assert parsed == nlu.parse_typed("发票查验失败，提示查验结果不一致")
        assert threads and threads[0].startswith("triage-cpu") and threads[0] != threading.main_thread().name
        assert "invoice_verification_failed" in backend.intents
    finally:
        pool.shutdown()


class KeywordBackend:
    """A backend that knows two words and returns nothing but the text and the intent."""

    name = "keywords"

    @property
    def intents(self) -> Sequence[str]:
        return ["request_human", "greet"]

    async def parse(self, text: str, context: ParseContext | None = None) -> Parse:
        return self.parse_now(text, context)

    def parse_now(self, text: str, context: ParseContext | None = None) -> Parse:
        if "人工" in text:
            return Parse(text, Intent("request_human", 0.99))
        if "你好" in text:
            return Parse(text, Intent("greet", 0.99))
        return Parse(text, Intent("nlu_fallback", 0.0))


def test_the_engine_runs_on_any_backend_that_keeps_the_contract(
    settings: Settings, knowledge_base: KnowledgeBase
) -> None:
    with TestClient(create_app(settings, nlu=KeywordBackend(), kb=knowledge_base)) as client:
        chat = Chat(client)
        chat.say("你好")
        assert chat.last["parse"]["intent"] == "greet" and chat.text
        chat.say("blah blah")
        assert chat.last["state"] == "bot"
        chat.say("我要转人工")
        assert chat.last["state"] in ("queued", "waiting")
        parsed = client.post("/model/parse", headers=AUTH, json={"text": "转人工"}).json()
        assert parsed["intent"] == {"name": "request_human", "confidence": 0.99}
