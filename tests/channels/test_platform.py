"""What the WeCom and DingTalk channels share: app configuration, the shared access token, pacing and
cutting texts to a platform's size limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aredis
from pydantic import SecretStr

from bot.channels.outbound import Outbound
from bot.channels.platform import Pacer, PartLedger, TokenCache, fit, load_apps, split_text
from bot.channels.wecom import merge
from bot.errors import ConfigError
from bot.logsafe import redact
from bot.settings import Settings
from bot.store.keys import Keys

AES = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aredis.Redis]:
    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


# ------------------------------------------------------------------------------- apps
def test_several_apps_from_the_channels_file_and_one_from_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "channels.yml"
    path.write_text(
        f"""
wecom:
  - name: finance
    corp_id: wwfinance
    agent_id: 1000002
    token: tok1
    aes_key: {AES}
    secret: s1
    tenant: acme
    vip_tier: 2
dingtalk:
  - name: hr
    app_key: dingkey
    app_secret: dingsecret
""",
        encoding="utf-8",
    )
    settings = Settings(
        channels_file=path,
        wecom_token=SecretStr("tok2"),
        wecom_aes_key=SecretStr(AES),
        wecom_corp_id="wwother",
        wecom_agent_id=1000003,
        wecom_secret=SecretStr("s2"),
    )
    apps = load_apps(settings)
    assert [(a.name, a.corp_id, a.tenant, a.vip_tier) for a in apps.wecom] == [
        ("finance", "wwfinance", "acme", 2),
        ("default", "wwother", "", 0),
    ]
    assert [a.name for a in apps.dingtalk] == ["hr"]
    assert "s1" not in repr(apps) and "dingsecret" not in repr(apps)  # secrets never in a repr or a log


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("wecom: [{name: a, corp_id: c, agent_id: 1, token: t, aes_key: k}]", "wecom.0.secret"),
        (
            "wecom: [{name: 'no spaces allowed', corp_id: c, agent_id: 1, token: t, aes_key: k, secret: s}]",
            "name",
        ),
        ("dingtalk: [{app_key: k, app_secret: s, vip_tier: 9}]", "vip_tier"),
        ("wechat: []", "wechat"),
        ("wecom: [unclosed", "not valid YAML"),
    ],
)
def test_a_bad_channels_file_names_the_file_and_the_field(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "channels.yml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_apps(Settings(channels_file=path))
    assert str(path) in str(error.value) and says in str(error.value)


def test_a_half_configured_app_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"TRIAGE_WECOM_AES_KEY.*TRIAGE_WECOM_SECRET"):
        load_apps(
            Settings(
                channels_file=tmp_path / "none.yml",
                wecom_corp_id="ww",
                wecom_token=SecretStr("t"),
                wecom_agent_id=1,
            )
        )
    with pytest.raises(ConfigError, match="TRIAGE_DINGTALK_APP_SECRET"):
        load_apps(Settings(channels_file=tmp_path / "none.yml", dingtalk_app_key="k"))


def test_two_apps_with_one_name_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "channels.yml"
    path.write_text("dingtalk: [{app_key: a, app_secret: s}, {app_key: b, app_secret: s}]", encoding="utf-8")
    with pytest.raises(ConfigError, match="two dingtalk apps are named default"):
        load_apps(Settings(channels_file=path))


# ------------------------------------------------------------------------------ tokens
async def test_one_process_refreshes_the_token_while_the_others_wait(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    fetched: list[int] = []

    async def fetch() -> tuple[str, int]:
        fetched.append(1)
        await asyncio.sleep(0.1)
        return f"token-{len(fetched)}", 7200

    keys = Keys(redis_prefix)
    processes = [TokenCache(redis_client, keys, "wecom", "default", fetch) for _ in range(5)]
    tokens = await asyncio.gather(*(p.get() for _ in range(4) for p in processes))
    assert set(tokens) == {"token-1"} and len(fetched) == 1
    ttl = await redis_client.ttl(keys.platform_token("wecom", "default"))
    assert 7200 - 300 - 5 <= ttl <= 7200 - 300  # kept until five minutes before it expires
    # The platform refused token-1: one refresh, even when every process saw the refusal.
    refreshed = await asyncio.gather(*(p.refresh(stale="token-1") for p in processes))
    assert set(refreshed) == {"token-2"} and len(fetched) == 2


# ------------------------------------------------------------------------------ pacing
async def test_pacing_holds_the_sends_over_the_limit_until_the_next_window(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    pacer = Pacer(redis_client, limit=3, window_s=0.5)
    key = Keys(redis_prefix).pace("wecom", "default", "zhangsan")
    started = time.monotonic()
    for _ in range(5):
        await pacer.wait(key)
    assert time.monotonic() - started >= 0.4  # sends 4 and 5 waited for the second window
    assert pacer.waited_s > 0


# ------------------------------------------------------------------------------ lengths
def test_split_text_respects_the_byte_limit_and_never_cuts_a_character() -> None:
    text = "\n".join(f"第{n}步：点击「发票夹」，核对号码、日期、金额、校验码。" * 3 for n in range(40))
    parts = split_text(text, 2048)
    assert len(parts) > 1 and all(len(p.encode()) <= 2048 for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")
    one_line = "发" * 3000  # no line break, no sentence end
    assert all(len(p.encode()) <= 2048 for p in split_text(one_line, 2048))
    assert "".join(split_text(one_line, 2048)) == one_line


def test_a_text_beyond_the_parts_allowed_ends_with_a_link_to_the_article() -> None:
    text = "\n".join("很长的一段说明。" * 20 for _ in range(40))
    parts = fit(text, 2048, 3, "/kb/zh-long", "完整内容：")
    assert len(parts) == 3 and parts[-1].endswith("完整内容： /kb/zh-long")
    assert all(len(p.encode()) <= 2048 for p in parts)


def test_a_burst_is_merged_into_as_few_messages_as_fit() -> None:
    burst = [Outbound(n, f"第 {n} 条", role="agent") for n in range(1, 61)]
    merged = merge(burst, "zh", 2048, 3)
    assert len(merged) == 1 and merged[0].count("条") == 60
    with_buttons = merge(
        [Outbound(1, "有帮助吗？", ({"title": "有帮助", "payload": "/helpful"},))], "zh", 2048, 3
    )
    assert with_buttons == ["有帮助吗？\n1. 有帮助"]


async def test_the_pace_is_a_sliding_window_not_a_calendar_minute(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    """Regression: a fixed window let 25 sends at :59 and 25 more at :01 through — 50 in two seconds,
    which WeCom silently drops past 30 a minute."""
    pacer = Pacer(redis_client, limit=3, window_s=0.5)
    key = Keys(redis_prefix).pace("wecom", "default", "slider")
    await asyncio.sleep(0.4)  # land near where a calendar window would roll over
    sent = []
    for _ in range(7):
        await pacer.wait(key)
        sent.append(time.monotonic())
    assert all(sent[i + 3] - sent[i] >= 0.45 for i in range(len(sent) - 3)), sent


async def test_a_delivered_part_is_skipped_by_any_process_that_retries(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    """Regression: parts already sent were remembered per process, so a takeover resent them."""
    sent: list[str] = []

    async def send(part: str) -> None:
        if part == "part 2" and "part 2" not in failed:
            failed.append(part)
            raise RuntimeError("the platform went away")
        sent.append(part)

    failed: list[str] = []
    first, second = PartLedger(redis_client, Keys(redis_prefix)), PartLedger(redis_client, Keys(redis_prefix))
    with pytest.raises(RuntimeError):
        await first.send_parts("wecom-x", (5, 7), ["part 1", "part 2"], send)
    await second.send_parts("wecom-x", (5, 7), ["part 1", "part 2"], send)
    assert sent == ["part 1", "part 2"]
    await second.send_parts("wecom-x", (5, 9), ["part 1 (another burst)"], send)  # new content is sent
    assert sent[-1] == "part 1 (another burst)"


def test_an_agents_long_reply_is_sent_whole_a_kb_answer_is_cut_with_its_link() -> None:
    long = "请按以下步骤处理：" + "核对发票号码、开票日期、金额和校验码。" * 400
    agent = merge([Outbound(1, long, role="agent")], "zh", 2048, 3)
    assert len(agent) > 3 and "".join(agent).replace("\n", "") == long.replace("\n", "")
    kb = merge([Outbound(2, long, role="bot", link="/kb/zh-x")], "zh", 2048, 3)
    assert len(kb) == 3 and kb[-1].endswith("完整内容： /kb/zh-x")


def test_platform_credentials_are_hidden_in_logged_urls() -> None:
    line = (
        "HTTP Request: POST https://oapi.dingtalk.com/robot/sendBySession?session=abc123 "
        "GET https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=s3cr3t "
        "POST /cgi-bin/message/send?access_token=tok&debug=1"
    )
    cleaned = redact(line)
    assert "abc123" not in cleaned and "s3cr3t" not in cleaned and "tok&" not in cleaned
    assert "corpid=ww1" in cleaned and "debug=1" in cleaned
