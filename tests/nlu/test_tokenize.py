import pytest

from bot.nlu.tokenize import load_user_dictionary, tokenize
from tests.conftest import DATA_DIR


@pytest.fixture(autouse=True, scope="module")
def _domain_dictionary() -> None:
    load_user_dictionary(DATA_DIR / "jieba_userdict.txt")


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("我想去吃兰州拉面", ["我", "想", "去", "吃", "兰州", "拉面"]),
        ("数电发票查验失败", ["数电发票", "查验", "失败"]),
        ("企业微信扫码登录", ["企业微信", "扫码", "登录"]),
        ("报销单审批流卡住", ["报销单", "审批流", "卡住"]),
    ],
)
def test_chinese_tokens_use_the_domain_dictionary(text: str, tokens: list[str]) -> None:
    assert [t.text for t in tokenize(text, chinese=True)] == tokens


@pytest.mark.parametrize(
    ("text", "lemmas"),
    [
        ("invoices were failing", ["invoice", "be", "fail"]),
        ("i couldn't upload", ["i", "can", "not", "upload"]),
    ],
)
def test_english_lemmas(text: str, lemmas: list[str]) -> None:
    assert [t.lemma for t in tokenize(text, chinese=False)] == lemmas


def test_token_offsets_point_into_the_text() -> None:
    text = "ocr 识别 invoices"
    for token in tokenize(text, chinese=True):
        assert text[token.start : token.end] == token.text


def test_empty_text_has_no_tokens() -> None:
    assert tokenize("", chinese=True) == []


def test_english_words_in_chinese_text_get_the_english_lemmas() -> None:
    """Mixed messages share the word view with English ones: "invoices uploaded" inside Chinese text is
    "invoice upload", as in an English message (the lookup table is keyed by hashes: a plain dict of it
    matched no word, and every English word in a Chinese message kept its inflection)."""
    mixed = [t.lemma for t in tokenize("我的invoices uploaded失败了，Exported files都是errors", chinese=True)]
    english = [t.lemma for t in tokenize("invoices uploaded, exported files, errors", chinese=False)]
    for lemma in ("invoice", "upload", "export", "file", "error"):
        assert lemma in mixed
        assert lemma in english
