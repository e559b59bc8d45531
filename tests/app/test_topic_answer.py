"""A message whose own words find no confident article, but whose topic the NLU is sure of, is answered with
the topic's own article (kb_index/config.yml ``answer.topic_confidence``): Cantonese, pasted error codes and
symptoms in other words than the articles' used to get "I'm not sure, shall I get a human?"."""

from __future__ import annotations

import re

import pytest

from tests.app.conftest import Chat

ARTICLE = re.compile(r"/kb/((zh|en)-[a-z0-9-]+)")


@pytest.mark.parametrize(
    ("text", "intent", "lang"),
    [
        ("我這邊張票上載咗好多次都唔得", "invoice_upload_failed", "zh"),
        ("登入頁面一直轉圈圈", "login_failed", "zh"),
        ("DUPLICATE_INVOICE: already linked to claim BX-2231", "invoice_duplicate", "en"),
    ],
)
def test_a_sure_topic_is_answered_with_its_own_article(chat: Chat, text: str, intent: str, lang: str) -> None:
    chat.say(text)
    assert chat.last["state"] == "bot" and chat.last["handoff"] is None
    assert chat.buttons != ["转人工客服", "先不用"] and chat.buttons != ["Talk to an agent", "Not now"]
    found = ARTICLE.search(chat.text)
    assert found, chat.text
    article_id, article_lang = found.groups()
    assert article_lang == lang
    kb = chat.client.app.state.services.kb  # type: ignore[attr-defined]
    index = kb.index
    assert intent in index.articles[index.by_id[article_id]].intents
