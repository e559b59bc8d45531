"""``bot.replies``: Traditional Chinese in the phrasing of the region the user writes like."""

from __future__ import annotations

import pytest

from bot import replies
from bot.engine import _reply_script


@pytest.mark.parametrize(
    ("text", "previous", "expected"),
    [
        ("張發票上載唔到，點算", "", "Hant-HK"),  # Cantonese: 唔
        ("我冇收到驗證碼", "", "Hant-HK"),
        ("佢話系統出咗問題", "", "Hant-HK"),
        ("收不到簡訊驗證碼", "", "Hant-TW"),  # standard written Chinese: Taiwan by default
        ("這和權限有關係嗎", "", "Hant-TW"),  # 關係 is not Cantonese 係
        ("依然不行", "Hant-HK", "Hant-HK"),  # the region is kept in the conversation
        ("呢個係咪bug", "Hant-TW", "Hant-HK"),
    ],
)
def test_the_region_comes_from_the_users_text(text: str, previous: str, expected: str) -> None:
    assert replies.regional("Hant", text, previous) == expected


@pytest.mark.parametrize("script", ["Hans", "Latn"])
def test_other_scripts_have_no_region(script: str) -> None:
    assert replies.regional(script, "唔該", "Hant-HK") == script


@pytest.mark.parametrize(
    ("script", "expected", "generic"),
    [
        ("Hant-TW", "為了核對平臺資訊，請重新上傳發票，軟體裡的設定", ("爲", "覈", "信息", "軟件")),
        ("Hant-HK", "為了核對平台信息，請重新上傳發票，軟件裏的設置", ("爲", "覈", "平臺")),
        ("Hant", "為了核對平臺資訊，請重新上傳發票，軟體裡的設定", ("爲", "覈")),  # stored before regions
    ],
)
def test_traditional_follows_the_regions_phrasing(
    script: str, expected: str, generic: tuple[str, ...]
) -> None:
    converted = replies.localize("为了核对平台信息，请重新上传发票，软件里的设置", script)
    assert converted == expected
    assert not any(form in converted for form in generic)


def test_replies_keep_the_conversations_region() -> None:
    assert _reply_script("張發票上載唔到", "Hant", "") == "Hant-HK"
    assert _reply_script("依然不行", "Hans", "Hant-HK") == "Hant-HK"  # the same in both scripts
    assert _reply_script("/helpful", "Latn", "Hant-HK") == "Hant-HK"  # a button
    assert _reply_script("發票查驗失敗", "Hant", "") == "Hant-TW"
    assert _reply_script("发票查验失败", "Hans", "Hant-TW") == "Hans"
    assert replies.say("helpful", "Hant-HK") == "有幫助"
