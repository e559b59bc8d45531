"""The two BM25 backends rank alike and give the same 0..1 coverage, so either can be configured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.kb.bm25 import Bm25sBM25, SparseBM25, load_backend

DOCS = [
    ["发票", "查验", "失败", "发票"],
    ["登录", "验证码"],
    ["发票", "上传", "失败", "格式", "pdf"],
    ["导出", "excel", "乱码"],
]


@pytest.mark.parametrize("query", [["发票"], ["发票", "失败"], ["验证码", "登录", "未知词"], ["未知词"]])
def test_backends_agree(query: list[str], tmp_path: Path) -> None:
    ours, theirs = SparseBM25.build(DOCS), Bm25sBM25.build(DOCS)
    a, b = ours.scores(query), theirs.scores(query)
    assert list(np.argsort(-a, kind="stable")) == list(np.argsort(-b, kind="stable"))
    np.testing.assert_allclose(a / ours.upper_bound(query), b / theirs.upper_bound(query), rtol=1e-5)
    for backend in (ours, theirs):
        backend.save(tmp_path / type(backend).__name__)
        loaded = load_backend(tmp_path / type(backend).__name__)
        np.testing.assert_allclose(loaded.scores(query), backend.scores(query), rtol=1e-6)


def test_unknown_terms_lower_the_coverage() -> None:
    index = SparseBM25.build(DOCS)
    known = index.scores(["导出", "乱码"])[3] / index.upper_bound(["导出", "乱码"])
    diluted = index.scores(["导出", "乱码", "海关"])[3] / index.upper_bound(["导出", "乱码", "海关"])
    assert 0 < diluted < known <= 1
