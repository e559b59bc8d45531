import pytest

from bot.nlu.normalize import normalize
from bot.nlu.sentiment import SentimentLexicon
from bot.nlu.severity import SeverityRules
from tests.conftest import DATA_DIR


@pytest.fixture(scope="module")
def rules() -> SeverityRules:
    return SeverityRules.from_file(DATA_DIR / "severity.yml")


@pytest.fixture(scope="module")
def lexicon() -> SentimentLexicon:
    return SentimentLexicon.from_file(DATA_DIR / "sentiment.yml")


@pytest.mark.parametrize(
    ("text", "intent", "level", "reasons"),
    [
        ("系统打不开", "system_outage", "urgent", ["intent:system_outage", "blocked:打不开"]),
        # Missing data: one user's draft is important; explicit or company-wide data loss is urgent.
        ("报销单全没了", "data_missing", "important", ["intent:data_missing"]),
        ("昨天存的草稿不见了", "data_missing", "important", ["intent:data_missing"]),
        ("昨天存的草稿不見了", "data_missing", "important", ["intent:data_missing"]),
        ("the draft I saved yesterday is gone", "data_missing", "important", ["intent:data_missing"]),
        (
            "数据全部丢失了，报销单都不见了",
            "data_missing",
            "urgent",
            ["intent:data_missing", "data_loss:全部丢失"],
        ),
        (
            "全公司的报销单都不见了",
            "data_missing",
            "urgent",
            ["intent:data_missing", "scope:全公司", "blocked:不见了"],
        ),
        ("we lost all our data after the update", None, "urgent", ["data_loss:lost all our data"]),
        (
            "全公司都登不上了",
            "login_failed",
            "urgent",
            ["intent:login_failed", "scope:全公司", "blocked:登不上"],
        ),
        # A deadline with the user blocked is important, not urgent (one user, one export).
        (
            "今天月底结账，发票查验失败",
            "invoice_verification_failed",
            "important",
            ["deadline:月底结账", "blocked:失败"],
        ),
        (
            "the export keeps failing and we have the month-end close tomorrow",
            "export_failed",
            "important",
            ["repeated:keeps failing", "deadline:month-end close", "blocked:failing"],
        ),
        # ... and asking how to do something before a deadline is a normal question.
        ("月底前要交报销，怎么批量导出审批通过的单子", "export_failed", "normal", []),
        ("how do I export approved reports before the month-end close", "export_failed", "normal", []),
        ("月底前要交報銷，怎麼批量導出審批通過的單子", "export_failed", "normal", []),
        # "slow" alone: a guessed outage without a blocked word is important, never urgent.
        ("今天系统好慢啊", "system_outage", "important", ["intent:system_outage"]),
        ("今天系統好慢啊", "system_outage", "important", ["intent:system_outage"]),
        ("the system is so slow today", "system_outage", "important", ["intent:system_outage"]),
        # scope words in zh, zh-Hant and en, when the users are blocked
        ("everyone in finance is locked out", None, "urgent", ["scope:everyone", "blocked:locked out"]),
        ("所有分公司都登录不了", None, "urgent", ["scope:所有分公司", "blocked:登录不了"]),
        ("全集團都登不上系統", None, "urgent", ["scope:全集团", "blocked:登不上"]),
        ("整个公司都用不了", None, "urgent", ["scope:整个公司", "blocked:用不了"]),
        ("all our branches can’t log in", None, "urgent", ["scope:all our branches", "blocked:can't"]),
        (
            "every user in our tenant is locked out",
            None,
            "urgent",
            ["scope:every user", "blocked:locked out"],
        ),
        ("全公司的报销政策是什么", "policy_question", "normal", []),  # scope alone is not an outage
        # blocked words: login and open failures in zh, zh-Hant, Cantonese and en
        ("整个集团都登入不了系统", None, "urgent", ["scope:整个集团", "blocked:登入不了"]),
        ("整個集團都登入不了系統", None, "urgent", ["scope:整个集团", "blocked:登入不了"]),
        ("全公司都登不进去", None, "urgent", ["scope:全公司", "blocked:登不进"]),
        ("所有人都进不去系统", None, "urgent", ["scope:所有人", "blocked:进不去"]),
        ("所有門店都打不開系統", None, "urgent", ["scope:所有门店", "blocked:打不开"]),
        ("整个部门都用不了", None, "urgent", ["scope:整个部门", "blocked:用不了"]),
        ("成個集團都入唔到系統", None, "urgent", ["scope:成个集团", "blocked:入唔到"]),
        ("the whole office can't log in", None, "urgent", ["scope:whole office", "blocked:can't"]),
        ("the app is dead for everyone", None, "urgent", ["scope:everyone", "blocked:dead"]),
        ("it's down for all users", None, "urgent", ["scope:all users", "blocked:it's down"]),
        ("the site is dead", "system_outage", "urgent", ["intent:system_outage", "blocked:dead"]),
        ("the deadline is friday", None, "normal", []),  # "dead" is a word, not a prefix
        # explicit urgency, and a whole group locked out with it
        ("紧急，发票上传不了", None, "important", ["urgency:紧急"]),
        ("緊急，發票上傳不了", None, "important", ["urgency:紧急"]),
        ("urgent: invoice upload fails", None, "important", ["urgency:urgent"]),
        ("need this ASAP", None, "important", ["urgency:asap"]),
        (
            "紧急！全集团的人都登不上系统了",
            None,
            "urgent",
            ["scope:全集团", "urgency:紧急", "blocked:登不上"],
        ),
        (
            "緊急！全集團的人都登不上系統了",
            None,
            "urgent",
            ["scope:全集团", "urgency:紧急", "blocked:登不上"],
        ),
        ("試了好幾次還是不行", None, "important", ["repeated:好几次"]),
        ("登录不了", "login_failed", "important", ["intent:login_failed"]),
        ("发票查验失败", "invoice_verification_failed", "normal", []),
        ("不急，慢慢来", None, "normal", []),
        ("not urgent at all", None, "normal", []),
        ("你好", "greet", "normal", []),
    ],
)
def test_severity(
    rules: SeverityRules, text: str, intent: str | None, level: str, reasons: list[str]
) -> None:
    result = rules.assess(normalize(text).text, intent)
    assert result["level"] == level
    assert result["reasons"] == reasons


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("太垃圾了！！！", "negative"),
        ("你们这什么破系统，浪费我一下午", "negative"),
        ("I am so frustrated with this", "negative"),
        ("this is unacceptable", "negative"),
        ("谢谢，解决了", "positive"),
        ("thanks, that was helpful", "positive"),
        ("唔該晒你", "positive"),  # Cantonese thanks
        ("多謝晒", "positive"),
        ("不错", "positive"),
        ("not bad", "neutral"),
        ("发票查验失败", "neutral"),
        ("不是很满意", "neutral"),
        ("", "neutral"),
    ],
)
def test_sentiment(lexicon: SentimentLexicon, text: str, label: str) -> None:
    assert lexicon.score(normalize(text).text)["label"] == label


def test_sentiment_explains_itself(lexicon: SentimentLexicon) -> None:
    result = lexicon.score(normalize("不好用，太失望了").text)
    assert result["label"] == "negative"
    assert "very:失望" in result["reasons"]
