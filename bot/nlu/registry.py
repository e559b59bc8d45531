"""Pipeline components: the interface they share and the registry that names them.

Components are listed by name in ``nlu_data/config.yml``. The registry maps each name to
``module:Class`` so heavy libraries are imported only when a pipeline uses the component.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from bot.errors import ConfigError
from bot.nlu.state import ParseState
from bot.nlu.training_data import TrainingData

REGISTRY: dict[str, str] = {
    "normalizer": "bot.nlu.components:NormalizerComponent",
    "tokenizer": "bot.nlu.components:TokenizerComponent",
    "entity_extractor": "bot.nlu.components:EntityComponent",
    "embedding": "bot.nlu.embedding:EmbeddingFeaturizer",
    "tfidf_classifier": "bot.nlu.classifier:TfidfIntentClassifier",
    "fallback": "bot.nlu.components:FallbackComponent",
    "severity": "bot.nlu.components:SeverityComponent",
    "sentiment": "bot.nlu.components:SentimentComponent",
}


@dataclass(frozen=True)
class Context:
    """What components may need besides their own config: where the data and resources live, and where
    a component may keep a cache that outlives one model (None: keep nothing on disk)."""

    data_dir: Path
    cache_dir: Path | None = None


class Component(Protocol):
    name: ClassVar[str]
    defaults: ClassVar[dict[str, Any]]
    trainable: ClassVar[bool]

    def train(self, data: TrainingData, states: list[ParseState]) -> None: ...

    def process(self, state: ParseState) -> None: ...

    def persist(self, directory: Path) -> None: ...


def component_class(name: str) -> Any:
    try:
        target = REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError(
            f"unknown pipeline component {name!r}; known components: {known}. "
            "Fix the 'pipeline' list in nlu_data/config.yml"
        ) from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def resolve_config(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The component's defaults overlaid with ``params``; unknown parameters are an error."""
    cls = component_class(name)
    unknown = set(params) - set(cls.defaults)
    if unknown:
        raise ConfigError(
            f"component {name!r} has no parameter(s) {sorted(unknown)}; "
            f"it accepts {sorted(cls.defaults) or 'none'}"
        )
    return {**cls.defaults, **params}


def create(name: str, config: dict[str, Any], context: Context) -> Component:
    component: Component = component_class(name)(config, context)
    return component


def load(name: str, config: dict[str, Any], directory: Path, context: Context) -> Component:
    component: Component = component_class(name).load(config, directory, context)
    return component
