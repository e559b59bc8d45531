"""DingTalk Stream mode through the whole app: a robot message arrives as a CALLBACK frame on the (fake)
Stream gateway's websocket, is stored and acknowledged, and the bot's answer goes to the message's session
webhook on the fake DingTalk — the same path as an HTTP callback, with no public URL."""

from __future__ import annotations

import asyncio
import time

from pydantic import SecretStr

from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from tests.channels.test_dingtalk_stream import (  # noqa: F401  (gateway, no_proxies are fixtures)
    APP_KEY,
    APP_SECRET,
    BOT_TOPIC,
    Gateway,
    frame,
    gateway,
    no_proxies,
)
from tests.fakes.dingtalk import FakeDingTalk
from triagebot.app import create_app


async def test_a_stream_message_is_acknowledged_and_answered(
    gateway: Gateway,  # noqa: F811
    settings: Settings,
    nlu: NLUPipeline,
    knowledge_base: KnowledgeBase,
) -> None:
    with FakeDingTalk(app_key=APP_KEY, app_secret=APP_SECRET) as fake:
        _, body = fake.callback_message("发票查验失败，提示查验结果不一致", sender_staff_id="staff-7")
        streaming = settings.model_copy(
            update={
                "dingtalk_app_key": APP_KEY,
                "dingtalk_app_secret": SecretStr(APP_SECRET),
                "dingtalk_api_base": gateway.api_base,
                "dingtalk_stream": True,
                "dingtalk_session_webhook_prefix": fake.url + "/",  # the fake serves the session webhooks
            }
        )
        app = create_app(streaming, nlu=nlu, kb=knowledge_base)
        async with app.router.lifespan_context(app):
            ws = await gateway.connection()
            for _ in range(2):  # DingTalk redelivers a frame it thinks was lost: handled once
                await ws.send(frame("CALLBACK", BOT_TOPIC, "stream-msg-1", body))
                ack = await gateway.ack()
                assert ack["code"] == 200 and ack["headers"]["messageId"] == "stream-msg-1"
            deadline = time.monotonic() + 15
            while not fake.texts_to("staff-7"):
                assert time.monotonic() < deadline, "no answer reached the session webhook"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            answers = fake.texts_to("staff-7")
            assert len(answers) == 1 and "查验" in answers[0]
            assert fake.sent[0].route == "session_webhook"
