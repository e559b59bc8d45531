import shutil
import time
from pathlib import Path

import pytest

from bot.kb.answer import LOW_CONFIDENCE, NO_MATCH, NO_QUERY, Answer, NoAnswer, compose_answer
from bot.kb.config import AnswerConfig
from bot.kb.index import KBIndex
from bot.kb.search import KnowledgeBase, search_index
from tests.conftest import KB_DIR
from tests.kb.conftest import write_article


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("查验失败 提示不一致", "zh-verify-info-mismatch"),
        ("发票查验说查无此票，今天刚开的", "zh-verify-not-found"),
        ("收不到短信验证码", "zh-login-sms-code"),
        ("密码输错太多次账号被锁了", "zh-login-account-locked"),
        ("导出的excel打开是乱码", "zh-export-garbled-excel"),
        ("接口返回签名错误", "zh-api-signature-error"),
        ("数电发票需要盖章吗", "zh-policy-digital-invoice-basics"),
        ("the SMS verification code never arrives", "en-login-sms-code"),
        ("exported CSV shows garbled characters in Excel", "en-export-garbled-excel"),
        ("API says invalid signature", "en-api-signature-error"),
        ("when will my reimbursement be paid", "en-payment-when-arrive"),
        ("my approver left the company", "en-approval-approver-left"),
    ],
)
def test_retrieval(kb_index: KBIndex, query: str, expected: str) -> None:
    result = search_index(kb_index, query, top=3)
    assert result.hits[0].article.id == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("發票查驗失敗，提示資訊不一致", "zh-verify-info-mismatch"),
        ("帳號被鎖定了怎麼辦", "zh-login-account-locked"),
    ],
)
def test_traditional_chinese_finds_the_simplified_article(
    kb_index: KBIndex, query: str, expected: str
) -> None:
    hit = search_index(kb_index, query, top=3).hits[0]
    assert hit.article.id == expected
    assert hit.article.lang == "zh"


def test_language_preference_and_explicit_lang(kb_index: KBIndex) -> None:
    assert search_index(kb_index, "SMS code", top=1).hits[0].article.lang == "en"
    assert search_index(kb_index, "SMS 验证码", lang="zh", top=1).hits[0].article.id == "zh-login-sms-code"
    # Nothing in the asked-for language matches: the other language's article, marked as such.
    hit = search_index(kb_index, "SMS code", lang="zh", top=1).hits[0]
    assert hit.article.lang == "en" and hit.other_language


def test_intent_boost_prefers_articles_listing_the_intent(kb_index: KBIndex) -> None:
    hits = search_index(kb_index, "失败", top=5, intent="export_failed").hits
    assert "export_failed" in hits[0].article.intents


def test_snippet_marks_matched_terms(kb_index: KBIndex) -> None:
    hit = search_index(kb_index, "查验失败 提示不一致", top=1).hits[0]
    assert "**" in hit.snippet
    assert hit.to_dict()["id"] == hit.article.id


@pytest.mark.parametrize("query", ["", "   ", "?!。，……", "的了吗", "x" * 10_000, "发票" * 5_000, "\x00\x01"])
def test_bad_queries_return_cleanly(kb_index: KBIndex, query: str) -> None:
    result = search_index(kb_index, query, top=5)
    assert len(result.hits) <= 5


def test_no_answer_when_nothing_matches(kb_index: KBIndex) -> None:
    config = AnswerConfig(threshold=0.25)
    assert compose_answer(None, search_index(kb_index, "?!"), config) == NoAnswer(
        NO_QUERY, "the message has no searchable words"
    )
    no_match = compose_answer(None, search_index(kb_index, "量子纠缠的猫"), config)
    assert isinstance(no_match, NoAnswer) and no_match.reason in (NO_MATCH, LOW_CONFIDENCE)
    off_topic = compose_answer(None, search_index(kb_index, "你们公司招聘吗，待遇怎么样"), config)
    assert isinstance(off_topic, NoAnswer)


def test_confident_answer_has_steps_and_link(kb_index: KBIndex) -> None:
    parse = {"intent": {"name": "invoice_verification_failed", "confidence": 0.9}}
    answer = compose_answer(
        parse, search_index(kb_index, "发票查验失败，提示查验结果不一致", top=3), AnswerConfig()
    )
    assert isinstance(answer, Answer)
    assert answer.article_id == "zh-verify-info-mismatch"
    assert answer.steps and answer.link == "/kb/zh-verify-info-mismatch"
    assert answer.to_dict()["answered"] is True


def test_other_language_fallback(tmp_path: Path, nlu_data_tables: tuple[dict[str, str], list[str]]) -> None:
    synonyms, intents = nlu_data_tables
    write_article(
        tmp_path / "articles",
        "en",
        "ofd-viewer",
        "Opening OFD files",
        "Install an OFD viewer",
        tags="ofd, viewer",
    )
    kb = KnowledgeBase(tmp_path / "articles", tmp_path / "index", tmp_path / "config.yml", synonyms, intents)
    hit = kb.search("OFD viewer 怎么装", lang="zh").hits[0]
    assert hit.article.id == "en-ofd-viewer" and hit.other_language


def test_index_reloads_when_an_article_changes(
    tmp_path: Path, nlu_data_tables: tuple[dict[str, str], list[str]]
) -> None:
    synonyms, intents = nlu_data_tables
    articles = tmp_path / "articles"
    shutil.copytree(KB_DIR / "articles", articles)
    kb = KnowledgeBase(
        articles, tmp_path / "index", KB_DIR / "config.yml", synonyms, intents, check_interval=0
    )
    assert kb.rebuilt
    assert (
        not kb.search("月球基地报销").hits or kb.search("月球基地报销").hits[0].article.id != "zh-moon-base"
    )
    write_article(articles, "zh", "moon-base", "月球基地差旅报销", "月球基地出差的报销流程", tags="月球基地")
    assert kb.reload_if_changed(force_check=True)
    assert kb.search("月球基地报销").hits[0].article.id == "zh-moon-base"
    # A broken edit keeps the last good index serving.
    (articles / "zh" / "moon-base.md").write_text("no front matter", encoding="utf-8")
    time.sleep(0.01)
    assert not kb.reload_if_changed(force_check=True)
    assert kb.article("zh-moon-base") is not None
    # Unchanged files: nothing is rebuilt.
    kb2 = KnowledgeBase(KB_DIR / "articles", tmp_path / "index2", KB_DIR / "config.yml", synonyms, intents)
    kb3 = KnowledgeBase(KB_DIR / "articles", tmp_path / "index2", KB_DIR / "config.yml", synonyms, intents)
    assert kb2.rebuilt and not kb3.rebuilt
