"""A Rasa project made from nlu_data/: export it, train it with the real Rasa, serve it.

Rasa Open Source 3.6.21 lives in its own Python 3.10 environment (``make rasa`` builds ``.venv-rasa``);
this module only writes files and runs that environment's ``rasa`` command. The exported project is an
NLU-only Rasa project: ``config.yml`` (JiebaTokenizer, word and char_wb CountVectorsFeaturizers, DIET or
LogisticRegression, a FallbackClassifier with our threshold), ``domain.yml`` listing the intents,
``data/nlu.yml`` with the examples, and jieba's user dictionary. Entities, synonyms, regexes and lookups
stay ours: the ``rasa`` backend extracts them with the native pipeline (docs/rasa.md).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import yaml

from bot.errors import ConfigError
from bot.nlu.config import PipelineConfig
from bot.nlu.training_data import TrainingData, dump_rasa_yaml

RASA_VERSION = "3.6.21"
DEFAULT_VENV = Path(".venv-rasa")
MODEL_NAME = "nlu"  # models/nlu.tar.gz inside the project
# Rasa asks about telemetry on first use and sends it unless told; TensorFlow's C++ logs are noise.
RASA_ENV = {"RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}

Progress = Callable[[str], None]


class Classifier(StrEnum):
    diet = "diet"
    logreg = "logreg"


def rasa_pipeline(
    classifier: Classifier, threshold: float, epochs: int = 100, user_dictionary: bool = True
) -> list[dict[str, Any]]:
    """Rasa's NLU pipeline mirroring ours: jieba words and character n-grams (within words, 1-4 like our
    char view) into the chosen classifier, then Rasa's FallbackClassifier at our threshold. Rasa's
    ambiguity fallback is off: ambiguity is a flag our fallback component sets, not a fallback."""
    tokenizer: dict[str, Any] = {"name": "JiebaTokenizer"}
    if user_dictionary:
        tokenizer["dictionary_path"] = "jieba"
    steps: list[dict[str, Any]] = [
        tokenizer,
        {"name": "CountVectorsFeaturizer"},
        {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
    ]
    if classifier is Classifier.diet:
        steps.append(
            {
                "name": "DIETClassifier",
                "epochs": epochs,
                "entity_recognition": False,  # entities are the native extractor's
                "constrain_similarities": True,
                "random_seed": 0,
            }
        )
    else:
        steps.append({"name": "LogisticRegressionClassifier", "random_state": 0})
    steps.append({"name": "FallbackClassifier", "threshold": threshold, "ambiguity_threshold": 0.0})
    return steps


def fallback_threshold_for_rasa(config: PipelineConfig) -> float:
    """Our fallback threshold; Rasa takes one number, so a per-language setting gives Rasa zh's."""
    threshold = config.param("fallback", "threshold")
    return float(threshold["zh"] if isinstance(threshold, dict) else threshold)


@dataclass(frozen=True)
class ExportSummary:
    project: Path
    intents: int
    examples: int
    classifier: Classifier


def export_project(
    data: TrainingData,
    config: PipelineConfig,
    data_dir: Path,
    out: Path,
    classifier: Classifier = Classifier.diet,
    epochs: int = 100,
) -> ExportSummary:
    """Write the Rasa project for ``data`` into ``out`` (its models/ folder is kept)."""
    out.mkdir(parents=True, exist_ok=True)
    user_dict = _user_dictionary(config, data_dir)
    if user_dict is not None:
        (out / "jieba").mkdir(exist_ok=True)
        shutil.copyfile(user_dict, out / "jieba" / "userdict.txt")
    pipeline = rasa_pipeline(classifier, fallback_threshold_for_rasa(config), epochs, user_dict is not None)
    rasa_config = {
        "recipe": "default.v1",
        "assistant_id": "triagebot",
        "language": "zh",
        "pipeline": pipeline,
        "policies": [],  # NLU only: the dialogue is triagebot's engine
    }
    header = "# Written by `triage rasa export` from nlu_data/: edit nlu_data/, not this file.\n"
    _write_yaml(out / "config.yml", rasa_config, header)
    intents = data.intents
    _write_yaml(out / "domain.yml", {"version": "3.1", "intents": intents}, header)
    (out / "data").mkdir(exist_ok=True)
    pairs = [(ex.text, ex.intent) for ex in data.examples]
    (out / "data" / "nlu.yml").write_text(header + dump_rasa_yaml(pairs), encoding="utf-8")
    return ExportSummary(out, len(intents), len(pairs), classifier)


def _user_dictionary(config: PipelineConfig, data_dir: Path) -> Path | None:
    try:
        name = config.param("tokenizer", "user_dictionary")
    except ConfigError:
        return None
    path = Path(name) if Path(name).is_absolute() else data_dir / name
    return path if path.exists() else None


def _write_yaml(path: Path, value: Any, header: str) -> None:
    text = yaml.safe_dump(value, allow_unicode=True, sort_keys=False)
    path.write_text(header + text, encoding="utf-8")


# ------------------------------------------------------------------ running Rasa
def rasa_executable(venv: Path = DEFAULT_VENV) -> Path:
    rasa = venv / "bin" / "rasa"
    if not rasa.exists():
        raise ConfigError(f"no Rasa at {rasa}; run `make rasa` to build {venv} (needs Python 3.10)")
    return rasa


def _environment() -> dict[str, str]:
    return {**os.environ, **RASA_ENV}


def run_rasa(args: list[str], project: Path, venv: Path, progress: Progress | None = None) -> None:
    """Run ``rasa ARGS`` in ``project``, reporting its output lines; a failure says what Rasa said last."""
    rasa = rasa_executable(venv)
    tail: deque[str] = deque(maxlen=15)
    with subprocess.Popen(
        [str(rasa.absolute()), *args],
        cwd=project,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            if line:
                tail.append(line)
                if progress:
                    progress(line[-100:])
        code = process.wait()
    if code != 0:
        last = "\n".join(tail)
        raise ConfigError(f"`rasa {' '.join(args)}` failed (exit {code}) in {project}:\n{last}")


def validate_project(project: Path, venv: Path = DEFAULT_VENV, progress: Progress | None = None) -> None:
    """``rasa data validate`` on the exported project."""
    run_rasa(
        ["data", "validate", "--domain", "domain.yml", "--data", "data", "--config", "config.yml"],
        project,
        venv,
        progress,
    )


def train_project(project: Path, venv: Path = DEFAULT_VENV, progress: Progress | None = None) -> Path:
    """``rasa train nlu``; returns the model archive (Rasa skips training when nothing changed)."""
    if not (project / "config.yml").exists():
        raise ConfigError(f"no Rasa project in {project}; run `triage rasa export` first")
    run_rasa(
        [
            "train",
            "nlu",
            "--config",
            "config.yml",
            "--nlu",
            "data",
            "--out",
            "models",
            "--fixed-model-name",
            MODEL_NAME,
        ],
        project,
        venv,
        progress,
    )
    return model_archive(project)


def model_archive(project: Path) -> Path:
    model = project / "models" / f"{MODEL_NAME}.tar.gz"
    if not model.exists():
        raise ConfigError(f"no trained Rasa model at {model}; run `triage rasa train` first")
    return model


def new_token() -> str:
    """Hex, so it never starts with "-" (a url-safe token did, 1 in 64, and `rasa run --auth-token -x…` read
    it as an option)."""
    return secrets.token_hex(24)


class RasaServer:
    """``rasa run --enable-api`` on loopback with an auth token; its output goes to ``rasa-server.log`` in
    the project."""

    def __init__(
        self,
        project: Path,
        port: int = 5005,
        token: str | None = None,
        venv: Path = DEFAULT_VENV,
        host: str = "127.0.0.1",
    ) -> None:
        self.project, self.port, self.venv, self.host = project, port, venv, host
        self.token = token or new_token()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = project / "rasa-server.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> RasaServer:
        rasa, model = rasa_executable(self.venv), model_archive(self.project)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(rasa.absolute()),
                    "run",
                    "--enable-api",
                    "--interface",
                    self.host,
                    "--port",
                    str(self.port),
                    "--auth-token",
                    self.token,
                    "--model",
                    str(model.relative_to(self.project)),
                ],
                cwd=self.project,
                env=_environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in `triage rasa serve` is ours to pass on
            )
        return self

    def wait_ready(self, timeout: float = 300.0, progress: Progress | None = None) -> dict[str, Any]:
        """Poll ``GET /status`` (which needs the token) until the model is loaded; returns its reply."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise ConfigError(f"rasa run exited before it was ready:\n{self.last_log()}")
            try:
                reply = httpx.get(f"{self.url}/status", params={"token": self.token}, timeout=2.0)
                if reply.status_code == 200 and reply.json().get("model_file"):
                    status: dict[str, Any] = reply.json()
                    return status
            except (httpx.HTTPError, ValueError):
                pass
            if progress:
                progress(f"{time.monotonic() - started:.0f} s — {self.last_log(1) or 'starting'}")
            time.sleep(0.5)
        self.stop()
        raise ConfigError(f"rasa run was not ready after {timeout:g} s:\n{self.last_log()}")

    def last_log(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(line[-160:] for line in text.strip().splitlines()[-lines:])

    def stop(self, grace: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> RasaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def describe(status: dict[str, Any]) -> str:
    return json.dumps({k: status.get(k) for k in ("model_id", "model_file")}, ensure_ascii=False)
