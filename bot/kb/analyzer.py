"""Turning article text and queries into search terms: the NLU's normaliser and tokenisers, synonyms,
stop words, and (optionally) Chinese character bigrams that survive segmentation differences."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.nlu.language import HAN, detect_language
from bot.nlu.normalize import normalize
from bot.nlu.tokenize import tokenize

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]{2,}")
_WORD = re.compile(r"\w", re.UNICODE)
ZH_STOP = frozenset(
    [
        "的",
        "了",
        "是",
        "我",
        "你",
        "他",
        "她",
        "它",
        "们",
        "我们",
        "你们",
        "在",
        "有",
        "和",
        "就",
        "都",
        "也",
        "还",
        "又",
        "吗",
        "呢",
        "吧",
        "啊",
        "呀",
        "哦",
        "嗯",
        "么",
        "这",
        "那",
        "这个",
        "那个",
        "一个",
        "个",
        "把",
        "被",
        "给",
        "让",
        "要",
        "会",
        "能",
        "可以",
        "怎么",
        "怎么办",
        "怎样",
        "如何",
        "什么",
        "为什么",
        "哪里",
        "哪",
        "请问",
        "请",
        "一下",
        "一直",
        "下",
        "上",
        "说",
        "时候",
        "现在",
        "但是",
        "可是",
        "然后",
        "所以",
        "因为",
        "如果",
        "已经",
        "没",
        "不",
        "啥",
        "咋",
        "呗",
        "哈",
        "嘛",
        "得",
        "地",
        "着",
        "过",
        "对",
        "与",
        "及",
        "或",
    ]
)


@functools.lru_cache(maxsize=1)
def _en_stop() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    # Negations and a few short words carry meaning in support questions ("can't log in", "not found").
    return frozenset(STOP_WORDS) - {
        "not",
        "no",
        "cannot",
        "down",
        "out",
        "off",
        "again",
        "empty",
        "first",
        "last",
    }


@dataclass
class Analyzer:
    synonyms: Mapping[str, str] = field(default_factory=dict)
    chinese_bigrams: bool = True
    _pattern: re.Pattern[str] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        variants = sorted((v for v in self.synonyms if v), key=len, reverse=True)
        if variants:
            parts = [rf"(?<![a-z]){re.escape(v)}(?![a-z])" if v.isascii() else re.escape(v) for v in variants]
            self._pattern = re.compile("|".join(parts))

    def canonical(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self.synonyms[m.group(0)], text)

    def terms(self, text: str) -> list[str]:
        """Search terms of ``text`` (any language; mixed text is segmented as Chinese)."""
        norm = self.canonical(normalize(text).text)
        chinese = detect_language(norm).language != "en"
        stop = ZH_STOP | _en_stop()
        terms = [
            t.lemma
            for t in tokenize(norm, chinese=chinese)
            if _WORD.search(t.text) and t.lemma not in stop and t.text not in stop
        ]
        if self.chinese_bigrams and HAN.search(norm):
            for run in _CJK_RUN.findall(norm):
                terms.extend(f"#{run[i : i + 2]}" for i in range(len(run) - 1))
        return terms
