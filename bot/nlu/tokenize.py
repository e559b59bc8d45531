"""Tokenisation: jieba (through spaCy's Chinese tokenizer) for Chinese and mixed text, spaCy's blank
English pipeline with the lookup lemmatiser (spacy-lookups-data) for English.

Both run on normalised text; tokens carry offsets into that text and a ``lemma`` used as the feature.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_loaded_userdicts: set[Path] = set()


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int
    lemma: str


@functools.lru_cache(maxsize=1)
def _english() -> Any:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()  # loads the lookup table from spacy-lookups-data; no download
    return nlp


@functools.lru_cache(maxsize=1)
def _chinese() -> Any:
    import jieba
    import spacy

    jieba.setLogLevel(logging.WARNING)
    return spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})


@functools.lru_cache(maxsize=1)
def _lemma_table() -> Any:
    """spaCy's lookup table; keyed by string hashes, so it is queried through its own ``get``, which
    hashes a string key (a plain dict of it has only integer keys and matched no word)."""
    lemmatizer = _english().get_pipe("lemmatizer")
    return lemmatizer.lookups.get_table("lemma_lookup")


def load_user_dictionary(path: Path) -> None:
    """Add a jieba user dictionary (``word [freq] [tag]`` per line) once per process."""
    path = path.resolve()
    with _lock:
        if path in _loaded_userdicts or not path.exists():
            return
        import jieba

        _chinese()  # initialise jieba's default tokenizer before adding words
        with path.open("rb") as handle:  # jieba leaves a file it opens itself unclosed
            jieba.load_userdict(handle)
        _loaded_userdicts.add(path)


def english_lemma(word: str) -> str:
    """The lookup lemma of an English word inside Chinese text ("invoices" -> "invoice"), as the English
    pipeline would give it, so mixed messages share features with English ones."""
    table = _lemma_table()
    lemma = table.get(word) or table.get(word.lower())
    return str(lemma) if lemma else word


def tokenize(text: str, chinese: bool) -> list[Token]:
    """Split normalised ``text`` into tokens, skipping whitespace."""
    if not text:
        return []
    nlp = _chinese() if chinese else _english()
    doc = nlp(text)
    tokens = []
    for tok in doc:
        if tok.is_space:
            continue
        if chinese:
            lemma = english_lemma(tok.text) if tok.text.isascii() else tok.text
        else:
            lemma = tok.lemma_ or tok.text
        tokens.append(Token(tok.text, tok.idx, tok.idx + len(tok.text), lemma.lower()))
    return tokens


def warm_up() -> None:
    """Load both tokenisers now rather than on the first message."""
    tokenize("warm up", chinese=False)
    tokenize("预热", chinese=True)
