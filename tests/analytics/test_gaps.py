"""The knowledge-gap loop: seeded failures, rolled up from conversation events, clustered by `triage gaps`
into the seeded topics (each cluster pure), with training examples that load and article stubs that parse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import redis.asyncio as aredis
from typer.testing import CliRunner

from bot.analytics.gaps import Gap, cluster, read_gaps
from bot.analytics.rollup import Rollup
from bot.analytics.suggestions import write_suggestions
from bot.kb.articles import parse_article
from bot.nlu.training_data import load_training_data
from bot.store.conversations import ConversationStore
from bot.store.keys import Keys
from tests.conftest import DATA_DIR, KB_DIR
from triagebot.cli import app

TOPICS: dict[str, tuple[str, list[str]]] = {
    "seal": (
        "Hans",
        [
            "电子签章盖不上去",
            "合同电子签章失败了",
            "电子签章提示证书过期",
            "电子签章显示无效怎么办",
            "怎么申请电子签章",
            "电子签章在手机上用不了",
        ],
    ),
    "printing": (
        "Hans",
        [
            "发票打印出来是空白的",
            "打印发票时格式错位",
            "发票打印偏移了",
            "针式打印机打印发票不对齐",
            "发票打印预览正常但打印空白",
        ],
    ),
    "logo": (
        "Latn",
        [
            "how do I change the company logo on reports",
            "company logo upload failed",
            "the logo looks blurry in exported reports",
            "where can I set our company logo",
            "logo not showing on the report header",
        ],
    ),
}
TOPIC_OF = {text: topic for topic, (_, texts) in TOPICS.items() for text in texts}


def seeded_gaps() -> list[Gap]:
    return [
        Gap("fallback", text, 0, language="en" if script == "Latn" else "zh")
        for script, texts in TOPICS.values()
        for text in texts
    ]


def test_the_seeded_topics_come_back_as_pure_clusters() -> None:
    clusters = cluster(seeded_gaps())
    assert sorted(c.size for c in clusters) == [5, 5, 6]
    for c in clusters:
        assert len({TOPIC_OF[g.text] for g in c.gaps}) == 1


def test_a_cluster_near_an_intent_suggests_examples_for_it(tmp_path: Path) -> None:
    examples = [(e.text, e.intent) for e in load_training_data(DATA_DIR).examples]
    texts = ["发票查验老是失败", "查验发票提示失败", "发票查验不通过怎么办"]
    found = cluster([Gap("not_helpful", t, 0) for t in texts], examples)
    assert len(found) == 1 and found[0].intent is not None
    assert found[0].intent.name == "invoice_verification_failed"
    written = write_suggestions(found, [], tmp_path, dt.date(2026, 11, 23))
    assert written.nlu_file is not None
    data = load_training_data(written.nlu_file)
    assert {e.intent for e in data.examples} == {"invoice_verification_failed"}


@pytest.fixture
async def seeded(redis_url: str, redis_prefix: str) -> None:
    """Each seeded text a user's message the bot could not understand, in its own conversation; and one
    agent reply marked for an article. Rolled up as the app would."""
    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        store = ConversationStore(client, redis_prefix)
        for script, texts in TOPICS.values():
            for text in texts:
                cid = (await store.create("web", script=script))["conversation_id"]
                await store.append(
                    cid,
                    {
                        "type": "message",
                        "role": "user",
                        "text": text,
                        "intent": "nlu_fallback",
                        "decision": "rephrase",
                        "reasons": ["rule:unclear"],
                    },
                )
        cid = (await store.create("web", script="Hans"))["conversation_id"]
        await store.append(cid, {"type": "message", "role": "user", "text": "报销单能撤回吗"})
        reply = await store.append(
            cid, {"type": "message", "role": "agent", "text": "1. 打开单据\n2. 点撤回"}
        )
        await store.append(
            cid,
            {
                "type": "article_suggestion",
                "role": "agent",
                "visibility": "internal",
                "agent": "a1",
                "reply_seq": reply["seq"],
                "text": "1. 打开单据\n2. 点撤回",
                "question": "报销单能撤回吗",
            },
        )
        await Rollup(store, "Asia/Shanghai", 400).run_once()
        assert len(await read_gaps(client, Keys(redis_prefix), 0)) == 17
    finally:
        await client.aclose()


def test_triage_gaps_finds_the_seeded_clusters_and_writes_suggestions(
    seeded: None, redis_url: str, redis_prefix: str, model_dir: Path, tmp_path: Path
) -> None:
    env = {
        "TRIAGE_REDIS_URL": redis_url,
        "TRIAGE_REDIS_PREFIX": redis_prefix,
        "TRIAGE_MODEL_DIR": str(model_dir.parent),
        "TRIAGE_DATA_DIR": str(DATA_DIR),
        "TRIAGE_KB_DIR": str(KB_DIR),
    }
    out = tmp_path / "suggestions"
    result = CliRunner().invoke(app, ["gaps", "--since", "1d", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert "17 gap entries" in result.output and "3 clusters" in result.output
    assert "1 replies marked for an article" in result.output
    assert "article candidate" in result.output and "报销单能撤回吗" in result.output

    data = load_training_data(out / "nlu")
    by_intent: dict[str, set[str]] = {}
    for example in data.examples:
        by_intent.setdefault(example.intent, set()).add(TOPIC_OF[example.text])
    assert len(by_intent) == 3 and all(len(topics) == 1 for topics in by_intent.values())
    assert sorted(len([e for e in data.examples if e.intent == i]) for i in by_intent) == [5, 5, 6]

    stubs = sorted((out / "articles").rglob("*.md"))
    assert len(stubs) == 4  # three clusters no article covers, one marked reply
    for stub in stubs:
        article, errors = parse_article(stub)
        assert article is not None and not errors, errors
    candidate = next(s for s in stubs if "agent-reply" in s.name)
    article, _ = parse_article(candidate)
    assert article is not None and article.steps == ["打开单据", "点撤回"]
    assert article.questions == ("报销单能撤回吗",)


def test_a_malformed_since_is_refused() -> None:
    result = CliRunner().invoke(app, ["gaps", "--since", "yesterday"])
    assert result.exit_code == 1 and "7d" in result.output
