"""The NLU pipeline: train from Rasa YAML, save to a fingerprinted model directory, load, parse."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import bot
from bot.artifact import replace_directory
from bot.contracts.parse import Parse
from bot.errors import ConfigError, InputError, ModelNotFoundError
from bot.nlu import registry
from bot.nlu.config import CONFIG_FILE, PipelineConfig, fingerprint
from bot.nlu.registry import Component, Context
from bot.nlu.state import ParseState
from bot.nlu.training_data import TrainingData, load_training_data

logger = logging.getLogger(__name__)

META_FILE = "model.json"
Progress = Callable[[str], None]


@dataclass
class NLUPipeline:
    config: PipelineConfig
    components: list[Component]
    meta: dict[str, Any]
    timezone: str = "Asia/Shanghai"

    # ----------------------------------------------------------------- training
    @classmethod
    def train(
        cls,
        data: TrainingData,
        config: PipelineConfig,
        context: Context,
        progress: Progress | None = None,
        fingerprint_value: str = "",
    ) -> NLUPipeline:
        progress = progress or (lambda stage: None)
        started = time.perf_counter()
        today = dt.date.today()
        components = [registry.create(name, params, context) for name, params in config.steps]
        examples = data.examples
        states = [ParseState(ex.text, today) for ex in examples]
        trainable = [i for i, c in enumerate(components) if getattr(c, "trainable", False)]
        last = trainable[-1] if trainable else -1
        for i, component in enumerate(components[: last + 1]):
            progress(f"{config.steps[i][0]}: training on {len(states):,} examples")
            component.train(data, states)
            if i < last:
                for state in states:
                    component.process(state)
        meta = {
            "fingerprint": fingerprint_value,
            "intents": sorted({ex.intent for ex in data.in_scope()}),
            "examples": len(data.in_scope()),
            "train_seconds": round(time.perf_counter() - started, 3),
            "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "triagebot_version": bot.__version__,
        }
        return cls(config, components, meta)

    @classmethod
    def train_from_dir(cls, data_dir: Path, progress: Progress | None = None) -> NLUPipeline:
        config = PipelineConfig.from_file(data_dir / CONFIG_FILE)
        data = load_training_data(data_dir)
        return cls.train(data, config, Context(data_dir), progress, fingerprint([data_dir], config))

    # -------------------------------------------------------------- persistence
    def save(self, directory: Path) -> None:
        """Write the model next to ``directory`` and swap it in, so readers never see half a model."""
        with replace_directory(directory) as tmp:
            for i, ((name, _), component) in enumerate(zip(self.config.steps, self.components, strict=True)):
                component.persist(tmp / f"{i:02d}_{name}")
            (tmp / META_FILE).write_text(
                json.dumps({**self.meta, "pipeline": self.config.as_list()}, ensure_ascii=False, indent=2),
                encoding="utf-8",
            )

    @classmethod
    def load(
        cls, directory: Path, data_dir: Path | None = None, timezone: str = "Asia/Shanghai"
    ) -> NLUPipeline:
        meta_path = directory / META_FILE
        if not meta_path.exists():
            raise ModelNotFoundError(directory)
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        config = PipelineConfig.from_dict({"pipeline": meta.pop("pipeline")}, str(meta_path))
        context = Context(data_dir or directory)
        components = [
            registry.load(name, params, directory / f"{i:02d}_{name}", context)
            for i, (name, params) in enumerate(config.steps)
        ]
        pipeline = cls(config, components, meta, timezone)
        pipeline.warm_up()
        return pipeline

    def warm_up(self) -> None:
        """Read now what components read lazily on first use (the encoder's weights, ~1.5 s), so the first
        message that needs it does not wait: a loaded or freshly trained model is ready to serve."""
        for component in self.components:
            if (warm_up := getattr(component, "warm_up", None)) is not None:
                warm_up()

    @classmethod
    def load_or_train(
        cls,
        data_dir: Path,
        model_dir: Path,
        progress: Progress | None = None,
        force: bool = False,
        timezone: str = "Asia/Shanghai",
    ) -> tuple[NLUPipeline, bool]:
        """Load the model in ``model_dir`` when its fingerprint matches the data; train otherwise."""
        config = PipelineConfig.from_file(data_dir / CONFIG_FILE)
        current = fingerprint([data_dir], config)
        if not force and stored_fingerprint(model_dir) == current:
            return cls.load(model_dir, data_dir, timezone), False
        context = Context(data_dir, cache_dir=cache_dir_for(model_dir))
        pipeline = cls.train(load_training_data(data_dir), config, context, progress, current)
        pipeline.timezone = timezone
        pipeline.save(model_dir)
        pipeline.warm_up()
        return pipeline, True

    # ------------------------------------------------------------------ parsing
    def today(self) -> dt.date:
        try:
            return dt.datetime.now(ZoneInfo(self.timezone)).date()
        except (KeyError, ValueError) as exc:
            raise ConfigError(
                f"unknown time zone {self.timezone!r}; set TRIAGE_TIMEZONE, e.g. Asia/Shanghai"
            ) from exc

    def process(self, text: str, today: dt.date | None = None) -> ParseState:
        if not isinstance(text, str):
            raise InputError(f"text must be a string, got {type(text).__name__}")
        state = ParseState(text, today or self.today())
        for component in self.components:
            component.process(state)
        return state

    def parse(self, text: str, today: dt.date | None = None) -> dict[str, Any]:
        """Rasa's parse shape for one message (see :meth:`ParseState.to_parse`)."""
        return self.process(text, today).to_parse()

    def parse_typed(self, text: str, today: dt.date | None = None) -> Parse:
        """:meth:`parse` as the frozen :class:`~bot.contracts.parse.Parse` the policy reads."""
        return Parse.from_rasa(self.parse(text, today))

    def parse_many(self, texts: Iterable[str]) -> list[dict[str, Any]]:
        today = self.today()
        return [self.parse(t, today) for t in texts]

    @property
    def intents(self) -> list[str]:
        return list(self.meta.get("intents", []))

    def classifier(self) -> Any:
        for component in self.components:
            if hasattr(component, "predict_proba"):
                return component
        raise ConfigError("the pipeline has no intent classifier")


def cache_dir_for(model_dir: Path) -> Path:
    """Where components keep caches that outlive one model (beside it: the model dir is swapped whole)."""
    return model_dir.parent / "cache"


def stored_fingerprint(model_dir: Path) -> str | None:
    try:
        return str(json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))["fingerprint"])
    except (OSError, ValueError, KeyError):
        return None
