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
        ("系统打不开", "system_outage", "urgent", ["intent:system_outage"]),
        ("报销单全没了", "data_missing", "urgent", ["intent:data_missing"]),
        ("全公司都登不上了", "login_failed", "urgent", ["intent:login_failed", "scope:全公司"]),
        ("今天月底结账，发票查验失败", "invoice_verification_failed", "urgent", ["deadline:月底结账"]),
        ("everyone in finance is locked out", None, "urgent", ["scope:everyone"]),
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
