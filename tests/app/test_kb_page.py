"""``/kb/<id>``: the article rendered from Markdown, safely, styled, with a way back, in the reader's script."""

from __future__ import annotations

import dataclasses
import re

import pytest
from fastapi.testclient import TestClient

from bot.kb import page

ARTICLE = "zh-verify-info-mismatch"


def test_markdown_is_rendered_not_shown_raw(client: TestClient) -> None:
    response = client.get(f"/kb/{ARTICLE}")
    assert response.status_code == 200
    html = response.text
    assert "<h2>" in html and ("<ol>" in html or "<ul>" in html)  # headings and lists, not "## " and "1. "
    assert "## " not in html and "**" not in html
    assert "<style>" in html  # styled
    assert re.search(r'<a class="back" href="/">← 返回</a>', html)  # a way back
    assert "script-src" not in response.headers["content-security-policy"]  # no scripts at all
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_the_back_link_returns_to_the_page_the_reader_came_from(client: TestClient) -> None:
    html = client.get(f"/kb/{ARTICLE}", headers={"Referer": "https://saas.example.com/expenses?id=7"}).text
    assert 'href="https://saas.example.com/expenses?id=7"' in html
    html = client.get(f"/kb/{ARTICLE}", headers={"Referer": "javascript:alert(1)"}).text
    assert "javascript:" not in html and '<a class="back" href="/">' in html


@pytest.mark.parametrize(
    ("query", "accept", "lang", "must", "must_not"),
    [
        ("", "zh-CN", "zh", "发票", "發票"),
        ("?script=Hant-TW", "", "zh-Hant-TW", "發票", "发票"),
        ("?script=Hant-HK", "", "zh-Hant-HK", "發票", "发票"),
        ("", "zh-TW,zh;q=0.9", "zh-Hant-TW", "發票", "发票"),
        ("", "zh-HK", "zh-Hant-HK", "發票", "发票"),
        ("?script=<script>", "", "zh", "发票", "<script>"),  # an unknown value is ignored, never echoed
    ],
)
def test_the_article_is_shown_in_the_readers_script(
    client: TestClient, query: str, accept: str, lang: str, must: str, must_not: str
) -> None:
    html = client.get(f"/kb/{ARTICLE}{query}", headers={"Accept-Language": accept}).text
    assert f'<html lang="{lang}">' in html
    assert must in html and must_not not in html
    assert ("幫助中心" if lang.startswith("zh-Hant") else "帮助中心") in html  # the labels too


def test_raw_html_in_an_article_is_shown_as_text(client: TestClient) -> None:
    kb = client.app.state.services.kb  # type: ignore[attr-defined]
    article = kb.article(ARTICLE)
    hostile = dataclasses.replace(
        article, body="<script>alert(1)</script>\n\n[click](javascript:alert(1)) <img src=x onerror=alert(1)>"
    )
    html = page.render(hostile, "Hans")
    assert "<script>alert" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    assert 'href="javascript:' not in html


def test_an_unknown_article_is_404(client: TestClient) -> None:
    assert client.get("/kb/zh-no-such-article").status_code == 404
