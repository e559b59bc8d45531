from pathlib import Path

import pytest

from bot.errors import DataError
from bot.kb.articles import ArticleErrors, load_articles
from tests.conftest import KB_DIR
from tests.kb.conftest import write_article

INTENTS = ["invoice_archive", "invoice_verification_failed"]


def test_repository_articles_are_valid_and_cover_every_support_intent(
    nlu_data_tables: tuple[dict[str, str], list[str]],
) -> None:
    _, intents = nlu_data_tables
    articles = load_articles(KB_DIR / "articles", intents)
    for lang in ("zh", "en"):
        assert sum(a.lang == lang for a in articles) >= 40
    support = set(intents) - {"greet", "goodbye", "thanks", "affirm", "deny", "out_of_scope"}
    covered = {i for a in articles for i in a.intents}
    assert support <= covered
    assert all(a.steps for a in articles)


def test_a_valid_pair_loads(tmp_path: Path) -> None:
    write_article(tmp_path, "zh", "keep", "发票归档", "归档说明", translations="en-keep")
    write_article(
        tmp_path, "en", "keep", "Archiving invoices", "How to archive", tags="archive", translations="zh-keep"
    )
    articles = load_articles(tmp_path, INTENTS)
    assert {a.id for a in articles} == {"zh-keep", "en-keep"}
    assert articles[1].steps[0].startswith("第一步")


@pytest.mark.parametrize(
    ("overrides", "message", "line"),
    [
        ({"id": ""}, "missing required field 'id'", 2),
        ({"intent": "invoice_lost"}, "unknown intent 'invoice_lost'", 6),
        ({"lang": "fr"}, "lang 'fr' must be one of", 4),
        ({"id": "en-wrong-lang"}, "must start with its language, 'zh-'", 2),
        ({"id": "Bad Id"}, "must look like zh-some-slug", 2),
        ({"translations": "en-missing"}, "translations points to 'en-missing', which does not exist", None),
    ],
)
def test_front_matter_errors_name_file_and_line(
    tmp_path: Path, overrides: dict[str, str], message: str, line: int | None
) -> None:
    path = write_article(tmp_path, "zh", "a", "标题", "正文", **overrides)
    with pytest.raises(ArticleErrors) as info:
        load_articles(tmp_path, INTENTS)
    error = info.value.errors[0]
    assert message in error.reason
    assert str(error.path) == str(path)
    if line is not None:
        assert error.line == line


def test_duplicate_ids_and_one_way_translations(tmp_path: Path) -> None:
    write_article(tmp_path, "zh", "a", "一", "正文")
    write_article(tmp_path / "more", "zh", "b", "二", "正文", id="zh-a")
    write_article(tmp_path, "zh", "c", "三", "正文", translations="en-c")
    write_article(tmp_path, "en", "c", "Three", "Body", translations="en-c")
    with pytest.raises(ArticleErrors) as info:
        load_articles(tmp_path, INTENTS)
    reasons = " | ".join(e.reason for e in info.value.errors)
    assert "duplicate id 'zh-a'" in reasons
    assert "must be in the other language and point back" in reasons
    assert "2 problem(s)" in str(info.value) or "3 problem(s)" in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("no front matter", "no YAML front matter"),
        ("---\nid: [unclosed\n---\nbody\n", "invalid front matter YAML"),
        ("---\n- a list\n---\nbody\n", "must be a mapping"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "zh").mkdir()
    (tmp_path / "zh" / "x.md").write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_articles(tmp_path, INTENTS)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no articles"):
        load_articles(tmp_path)
