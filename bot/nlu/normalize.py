"""Text normalisation that keeps a map back to the user's original characters.

Full-width forms become half-width, Traditional Chinese becomes Simplified (for understanding only),
letters are lower-cased and runs of whitespace collapse to one space. Entity offsets found in the
normalised text are mapped back through :attr:`Normalized.offsets` so they point into the original.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from typing import Any

_FULLWIDTH_START, _FULLWIDTH_END, _FULLWIDTH_SHIFT = 0xFF01, 0xFF5E, 0xFEE0
# Characters that carry no meaning for understanding but break tokenisers and regexes.
_DROP = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"}


@dataclass(frozen=True)
class Normalized:
    original: str
    text: str
    # offsets[i] is the index in ``original`` of normalised character i; one extra entry maps the end.
    offsets: tuple[int, ...]

    def span_to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a [start, end) span of the normalised text to the original text."""
        if start >= end:
            return self.offsets[start], self.offsets[start]
        return self.offsets[start], self.offsets[end - 1] + 1


@functools.lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional → Simplified, always the same length as the input (character by character if needed)."""
    try:
        converted: str = _t2s().convert(text)
    except UnicodeEncodeError:
        # Lone surrogates (from broken clients) cannot be UTF-8: replace each with "?" (same length).
        text = text.encode("utf-8", "replace").decode("utf-8")
        converted = _t2s().convert(text)
    if len(converted) == len(text):
        return converted
    # Phrase-level conversions can change the length; fall back to per-character conversion so that
    # offsets stay one-to-one.
    chars = [_t2s().convert(ch) for ch in text]
    return "".join(c if len(c) == 1 else ch for c, ch in zip(chars, text, strict=True))


def _halfwidth(ch: str) -> str:
    code = ord(ch)
    if _FULLWIDTH_START <= code <= _FULLWIDTH_END:
        return chr(code - _FULLWIDTH_SHIFT)
    if code == 0x3000:  # ideographic space
        return " "
    return ch


def _lower(ch: str) -> str:
    low = ch.lower()
    return low if len(low) == 1 else ch


def normalize(text: str) -> Normalized:
    """Normalise ``text`` for understanding, keeping a character map back to it."""
    simplified = to_simplified(text)
    out: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(simplified):
        if ch in _DROP or (unicodedata.category(ch) == "Cc" and not ch.isspace()):
            continue
        ch = _lower(_halfwidth(ch))
        if ch.isspace():
            if not out or out[-1] == " ":
                continue
            ch = " "
        out.append(ch)
        offsets.append(i)
    if out and out[-1] == " ":
        out.pop()
        offsets.pop()
    offsets.append(offsets[-1] + 1 if offsets else 0)
    return Normalized(original=text, text="".join(out), offsets=tuple(offsets))
