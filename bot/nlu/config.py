"""The pipeline config file (nlu_data/config.yml) and the fingerprint of data + config."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError
from bot.nlu.registry import component_class, resolve_config

CONFIG_FILE = "config.yml"
_FINGERPRINTED = {".yml", ".yaml", ".txt", ".json"}


@dataclass(frozen=True)
class PipelineConfig:
    steps: tuple[tuple[str, dict[str, Any]], ...]

    @classmethod
    def from_dict(cls, raw: Any, source: str = CONFIG_FILE) -> PipelineConfig:
        if not isinstance(raw, dict) or not isinstance(raw.get("pipeline"), list) or not raw["pipeline"]:
            raise ConfigError(f"{source}: needs a non-empty 'pipeline:' list of components (- name: ...)")
        steps = []
        for i, item in enumerate(raw["pipeline"], 1):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ConfigError(f"{source}: pipeline item {i} needs a 'name'")
            params = {k: v for k, v in item.items() if k != "name"}
            steps.append((item["name"], resolve_config(item["name"], params)))
        return cls(tuple(steps))

    @classmethod
    def from_file(cls, path: Path) -> PipelineConfig:
        if not path.exists():
            raise ConfigError(f"no pipeline config at {path}; copy nlu_data/config.yml from the repository")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
        return cls.from_dict(raw, str(path))

    def as_list(self) -> list[dict[str, Any]]:
        return [{"name": name, **params} for name, params in self.steps]

    def param(self, component: str, key: str) -> Any:
        for name, params in self.steps:
            if name == component:
                return params[key]
        raise ConfigError(f"the pipeline has no {component!r} component")


EVAL_DIR = "eval"  # nlu_data/eval/: labelled evaluation sets, never trained on


# Bumped when a code change gives the same text other features, so that a model trained before is
# retrained rather than served features it never saw. 2: English lemmas for English words in Chinese text;
# 3: the intent is read from the request's focus (bot/nlu/focus.py).
FEATURES_VERSION = 3


def fingerprint(paths: list[Path], config: PipelineConfig) -> str:
    """sha256 over every data/resource file under ``paths`` (the evaluation sets aside), the resolved
    config and :data:`FEATURES_VERSION`."""
    digest = hashlib.sha256(f"features-v{FEATURES_VERSION}".encode())
    digest.update(repr(config.as_list()).encode())
    for name, params in config.steps:
        # e.g. the embedding encoder's package version: a model depends on it as much as on its config
        extra = getattr(component_class(name), "fingerprint_extra", None)
        if extra is not None:
            digest.update(extra(params).encode())
    for root in paths:
        files = (
            [root]
            if root.is_file()
            else sorted(
                p
                for p in root.rglob("*")
                if p.suffix in _FINGERPRINTED and EVAL_DIR not in p.relative_to(root).parts
            )
        )
        for file in files:
            digest.update(str(file.relative_to(root) if root.is_dir() else file.name).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()
