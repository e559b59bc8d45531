from pathlib import Path

import pytest

from bot.kb.config import KBConfig
from bot.kb.index import KBIndex, load_or_build
from bot.nlu.training_data import load_training_data
from tests.conftest import DATA_DIR, KB_DIR


@pytest.fixture(scope="session")
def nlu_data_tables() -> tuple[dict[str, str], list[str]]:
    data = load_training_data(DATA_DIR)
    return data.synonyms, data.intents


@pytest.fixture(scope="session")
def kb_index(
    tmp_path_factory: pytest.TempPathFactory, nlu_data_tables: tuple[dict[str, str], list[str]]
) -> KBIndex:
    synonyms, intents = nlu_data_tables
    out = tmp_path_factory.mktemp("kb") / "kb"
    index, _ = load_or_build(
        KB_DIR / "articles", out, KBConfig.from_file(KB_DIR / "config.yml"), synonyms, intents
    )
    return index


ARTICLE = """---
id: {id}
title: {title}
lang: {lang}
kind: article
intents: [{intent}]
tags: [{tags}]
product_area: invoice
severity_hint: normal
updated: 2026-11-01
translations: {translations}
---
## 症状
{body}

## 解决步骤
1. 第一步：{body}
2. 第二步：联系管理员。
"""


def write_article(
    root: Path,
    folder: str,
    slug: str,
    title: str,
    body: str,
    intent: str = "invoice_archive",
    tags: str = "归档",
    translations: str = "",
    **overrides: str,
) -> Path:
    """Write ``root/folder/slug.md``; ``overrides`` replace front-matter values (id, lang, ...)."""
    fields = {
        "id": f"{folder}-{slug}",
        "title": title,
        "lang": folder,
        "intent": intent,
        "tags": tags,
        "translations": translations,
        "body": body,
    }
    fields.update(overrides)
    path = root / folder / f"{slug}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ARTICLE.format(**fields), encoding="utf-8")
    return path
