"""Knowledge-base settings (kb_index/config.yml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BM25Config(_Strict):
    backend: Literal["sparse", "bm25s"] = "sparse"
    k1: float = Field(1.2, ge=0)
    b: float = Field(0.75, ge=0, le=1)


class FieldWeights(_Strict):
    title: int = Field(3, ge=0, le=10)
    tags: int = Field(2, ge=0, le=10)
    questions: int = Field(2, ge=0, le=10)
    body: int = Field(1, ge=0, le=10)


class AnswerConfig(_Strict):
    threshold: float = Field(0.25, ge=0, le=1)
    intent_bonus: float = Field(0.15, ge=0, le=1)
    # A message whose own words find no confident article, but whose intent the NLU is this sure of
    # (calibrated), is answered with that intent's article, found by the intent's name in the user's script.
    # 1 turns it off.
    topic_confidence: float = Field(0.7, ge=0, le=1)


class KBConfig(_Strict):
    bm25: BM25Config = BM25Config()
    fields: FieldWeights = FieldWeights()
    chinese_bigrams: bool = True
    intent_boost: float = Field(0.5, ge=0)
    other_language_penalty: float = Field(0.8, ge=0, le=1)
    answer: AnswerConfig = AnswerConfig()

    @classmethod
    def from_file(cls, path: Path) -> KBConfig:
        if not path.exists():
            return cls()
        try:
            return cls.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        except (yaml.YAMLError, ValidationError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
