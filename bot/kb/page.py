"""A knowledge-base article as a web page: its Markdown rendered safely, styled, in the reader's script,
with a way back.

Safety: markdown-it-py with raw HTML disabled (``<script>`` in an article shows as text) and its link
validation (no ``javascript:``/``data:`` links); the page is served with a CSP that allows no script at all.
"""

from __future__ import annotations

import functools
import html
from typing import Any
from urllib.parse import urlsplit

from bot import replies
from bot.kb.articles import Article
from bot.vocabulary import Script

# Served with the page: inline styles only, no scripts, images from this origin or https.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; base-uri 'none'; form-action 'none'"
SCRIPTS = {Script.HANS.value, Script.HANT.value, replies.HANT_HK, replies.HANT_TW, Script.LATN.value}

LABELS = {
    "back": {"zh": "← 返回", "en": "← Back"},
    "help": {"zh": "帮助中心", "en": "Help center"},
    "updated": {"zh": "更新于", "en": "Updated"},
    "translation": {"zh": "阅读中文版", "en": "Read in English"},
}

STYLE = """
:root { color-scheme: light dark; --fg: #1f2933; --bg: #f8fafc; --card: #fff; --muted: #64748b; --accent: #2563eb; --line: #e2e8f0; }
@media (prefers-color-scheme: dark) { :root { --fg: #e5e7eb; --bg: #0f172a; --card: #111827; --muted: #94a3b8; --accent: #93c5fd; --line: #334155; } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 16px/1.7 system-ui, -apple-system, "PingFang SC", "PingFang TC", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }
header { max-width: 760px; margin: 0 auto; padding: 16px 20px 0; display: flex; gap: 16px; align-items: center; font-size: 14px; }
header a { color: var(--accent); text-decoration: none; font-weight: 600; }
header span { color: var(--muted); }
article { max-width: 760px; margin: 12px auto 48px; padding: 24px 28px; background: var(--card); border: 1px solid var(--line); border-radius: 12px; }
article h1 { font-size: 1.6em; line-height: 1.3; margin: 0 0 4px; }
article h2 { font-size: 1.15em; margin: 1.6em 0 .4em; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
article a { color: var(--accent); }
article code { background: rgba(100,116,139,.15); padding: .1em .35em; border-radius: 4px; }
article pre { overflow-x: auto; background: rgba(100,116,139,.12); padding: 12px; border-radius: 8px; }
article ol, article ul { padding-left: 1.5em; }
.meta { color: var(--muted); font-size: 13px; margin: 0 0 12px; }
@media (max-width: 480px) { article { border-radius: 0; border-left: 0; border-right: 0; padding: 18px 16px; } }
@media (forced-colors: active) { article { border: 1px solid CanvasText; } }
"""


@functools.lru_cache(maxsize=1)
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def reader_script(requested: str | None, accept_language: str = "") -> str:
    """The script to show an article in: ``?script=`` when it is one we know, else the browser's first
    Chinese or English preference (zh-TW → Hant-TW, zh-HK/zh-MO → Hant-HK), else Simplified Chinese."""
    if requested in SCRIPTS:
        return requested
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith(("zh-hk", "zh-mo", "zh-hant-hk")):
            return replies.HANT_HK
        if tag.startswith(("zh-tw", "zh-hant")):
            return replies.HANT_TW
        if tag.startswith("zh"):
            return Script.HANS
        if tag.startswith("en"):
            return Script.LATN
    return Script.HANS


def back_link(referer: str | None) -> str:
    """Where "back" goes: the page the reader came from when it is an http(s) page, else the home page."""
    if referer:
        parts = urlsplit(referer)
        if parts.scheme in ("http", "https") and parts.netloc and not parts.path.startswith("/kb/"):
            return referer
    return "/"


def render(article: Article, script: str, back: str = "/") -> str:
    """The article's page. Chinese articles are shown in the reader's Chinese script; the language
    stays the article's own (a translation, where there is one, is linked)."""
    lang = "en" if article.lang == "en" else "zh"
    shown = (
        script
        if lang == "zh" and replies.is_traditional(script)
        else (Script.LATN if lang == "en" else Script.HANS)
    )

    def say(text: str) -> str:
        return replies.localize(text, shown) if lang == "zh" else text

    def label(key: str) -> str:
        return say(LABELS[key][lang])

    title = html.escape(say(article.title))
    body = _markdown().render(say(article.body))
    html_lang = {"Hant-HK": "zh-Hant-HK", "Hant-TW": "zh-Hant-TW", "Hant": "zh-Hant"}.get(shown, lang)
    translation = ""
    if article.translations:  # the other language's version, its label in that language
        chinese = script if script != Script.LATN else Script.HANS
        href = f"/kb/{article.translations}" + (f"?script={chinese}" if lang == "en" else "")
        other = (
            replies.localize(LABELS["translation"]["zh"], chinese)
            if lang == "en"
            else LABELS["translation"]["en"]
        )
        translation = f' · <a href="{html.escape(href)}" rel="alternate">{html.escape(other)}</a>'
    updated = f"{html.escape(label('updated'))} {html.escape(article.updated)}" if article.updated else ""
    return (
        f'<!doctype html><html lang="{html_lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title} · {html.escape(label('help'))}</title><style>{STYLE}</style></head><body>"
        f'<header><a class="back" href="{html.escape(back)}">{html.escape(label("back"))}</a>'
        f"<span>{html.escape(label('help'))}</span></header>"
        f'<main><article><h1>{title}</h1><p class="meta">{updated}{translation}</p>{body}</article></main>'
        "</body></html>"
    )
