"""The rule-based pipeline components: normalisation, tokenisation, entities, fallback, severity,
sentiment. The statistical intent classifier lives in :mod:`bot.nlu.classifier`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, ClassVar

from bot.errors import ConfigError
from bot.nlu.entities import EntityExtractor
from bot.nlu.focus import request_focus
from bot.nlu.language import detect_language
from bot.nlu.normalize import normalize
from bot.nlu.registry import Context
from bot.nlu.sentiment import SentimentLexicon
from bot.nlu.severity import SeverityRules
from bot.nlu.state import FALLBACK_INTENT, ParseState
from bot.nlu.tokenize import load_user_dictionary, tokenize
from bot.nlu.training_data import OUT_OF_SCOPE, TrainingData


class _Stateless:
    """Components whose whole state is their config."""

    name: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}
    trainable: ClassVar[bool] = False

    def __init__(self, config: dict[str, Any], context: Context) -> None:
        self.config = config
        self.context = context

    def train(self, data: TrainingData, states: list[ParseState]) -> None:
        return None

    def persist(self, directory: Path) -> None:
        return None

    @classmethod
    def load(cls, config: dict[str, Any], directory: Path, context: Context) -> Any:
        return cls(config, context)


class NormalizerComponent(_Stateless):
    """Full/half width, Traditional → Simplified, case, whitespace; language detection; length cap."""

    name = "normalizer"
    defaults: ClassVar[dict[str, Any]] = {"max_chars": 2000, "default_language": "zh"}

    def process(self, state: ParseState) -> None:
        text = state.text
        if len(text) > self.config["max_chars"]:
            # Understanding needs the start of a message; 100 KB pasted logs must not cost 100 KB of work.
            text, state.truncated = text[: self.config["max_chars"]], True
        state.norm = normalize(text)
        state.language = detect_language(text, self.config["default_language"])


class _ResourceFile(_Stateless):
    """A component configured by a file in nlu_data/ that is copied into the model on persist."""

    file_key = "file"

    def _source(self) -> Path:
        path = Path(self.config[self.file_key])
        return path if path.is_absolute() else self.context.data_dir / path

    def persist(self, directory: Path) -> None:
        source = self._source()
        if source.exists():
            directory.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, directory / source.name)

    @classmethod
    def load(cls, config: dict[str, Any], directory: Path, context: Context) -> Any:
        # Prefer the copy saved with the model so a model behaves the same wherever it is loaded.
        return cls(config, Context(data_dir=directory)) if directory.exists() else cls(config, context)


class TokenizerComponent(_ResourceFile):
    """jieba (via spaCy) for Chinese and mixed text, spaCy English with lookup lemmas otherwise."""

    name = "tokenizer"
    file_key = "user_dictionary"
    defaults: ClassVar[dict[str, Any]] = {"user_dictionary": "jieba_userdict.txt"}

    def __init__(self, config: dict[str, Any], context: Context) -> None:
        super().__init__(config, context)
        load_user_dictionary(self._source())

    def process(self, state: ParseState) -> None:
        chinese = state.language is None or state.language.language != "en"
        state.tokens = tokenize(state.normalized_text, chinese=chinese)
        state.focus = request_focus(state.normalized_text)


class EntityComponent(_Stateless):
    """Validated regex entities plus the data's regex/lookup tables and synonyms."""

    name = "entity_extractor"
    trainable = True

    def __init__(
        self, config: dict[str, Any], context: Context, tables: dict[str, Any] | None = None
    ) -> None:
        super().__init__(config, context)
        self.tables = tables or {"regexes": {}, "lookups": {}, "synonyms": {}}
        self.extractor = EntityExtractor(**self.tables)

    def train(self, data: TrainingData, states: list[ParseState]) -> None:
        self.tables = {"regexes": data.regexes, "lookups": data.lookups, "synonyms": data.synonyms}
        self.extractor = EntityExtractor(**self.tables)

    def process(self, state: ParseState) -> None:
        if state.norm is not None:
            state.entities = self.extractor.extract(state.norm, state.today)

    def persist(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "tables.json").write_text(json.dumps(self.tables, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, config: dict[str, Any], directory: Path, context: Context) -> EntityComponent:
        tables = json.loads((directory / "tables.json").read_text(encoding="utf-8"))
        return cls(config, context, tables)


THRESHOLD_LANGUAGES = ("zh", "zh-Hant", "en")  # a mixed zh/en message takes zh's threshold


def fallback_threshold(threshold: float | dict[str, float], language: str) -> float:
    """The fallback threshold for a message in ``language``: one number, or one per language."""
    if isinstance(threshold, dict):
        return float(threshold[language if language in threshold else "zh"])
    return float(threshold)


class FallbackComponent(_Stateless):
    """Rasa's FallbackClassifier: below ``threshold`` the intent is nlu_fallback (ranking kept);
    when the top two are closer than ``ambiguity_threshold`` the parse is flagged ambiguous. A message the
    classifier puts in the out_of_scope class falls back too. ``threshold`` is one number or a mapping
    with one for each of zh, zh-Hant and en (mixed messages use zh's)."""

    name = "fallback"
    defaults: ClassVar[dict[str, Any]] = {"threshold": 0.3, "ambiguity_threshold": 0.1}

    def __init__(self, config: dict[str, Any], context: Context) -> None:
        super().__init__(config, context)
        threshold = config["threshold"]
        if isinstance(threshold, dict):
            if set(threshold) != set(THRESHOLD_LANGUAGES):
                raise ConfigError(
                    f"fallback threshold: give one number, or one for each of {list(THRESHOLD_LANGUAGES)}; "
                    f"got {sorted(threshold)}"
                )
            values = {f"threshold {lang}": v for lang, v in threshold.items()}
        else:
            values = {"threshold": threshold}
        values["ambiguity_threshold"] = config["ambiguity_threshold"]
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"fallback {key} must be a number between 0 and 1, got {value!r}")

    def process(self, state: ParseState) -> None:
        if not state.ranking:
            state.intent, state.confidence = FALLBACK_INTENT, 0.0
            return
        top, confidence = state.ranking[0]
        second = state.ranking[1][1] if len(state.ranking) > 1 else 0.0
        state.ambiguous = confidence - second < self.config["ambiguity_threshold"]
        language = state.language.language if state.language else "zh"
        if confidence < fallback_threshold(self.config["threshold"], language) or top == OUT_OF_SCOPE:
            state.intent, state.confidence = FALLBACK_INTENT, confidence
        else:
            state.intent, state.confidence = top, confidence


class SeverityComponent(_ResourceFile):
    name = "severity"
    file_key = "rules"
    defaults: ClassVar[dict[str, Any]] = {"rules": "severity.yml"}

    def __init__(self, config: dict[str, Any], context: Context) -> None:
        super().__init__(config, context)
        self.rules = SeverityRules.from_file(self._source())

    def process(self, state: ParseState) -> None:
        intent = None if state.intent == FALLBACK_INTENT else state.intent
        state.severity = self.rules.assess(state.normalized_text, intent)


class SentimentComponent(_ResourceFile):
    name = "sentiment"
    file_key = "lexicon"
    defaults: ClassVar[dict[str, Any]] = {"lexicon": "sentiment.yml"}

    def __init__(self, config: dict[str, Any], context: Context) -> None:
        super().__init__(config, context)
        self.lexicon = SentimentLexicon.from_file(self._source())

    def process(self, state: ParseState) -> None:
        state.sentiment = self.lexicon.score(state.normalized_text)
