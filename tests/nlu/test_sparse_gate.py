"""The classifier's sparse gate (``sparse_gate``): a TF-IDF-only model answers the messages it is confident
about, and the sentence encoder runs only for the others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.errors import ConfigError
from bot.nlu.config import PipelineConfig
from bot.nlu.pipeline import NLUPipeline
from bot.nlu.registry import Context
from bot.nlu.training_data import Example, TrainingData
from tests.conftest import DATA_DIR, TODAY, tfidf_classifier

SMALL = [
    ("发票查验失败", "invoice"),
    ("发票验真提示不一致", "invoice"),
    ("the invoice check failed", "invoice"),
    ("invoice verification error", "invoice"),
    ("發票查驗不通過", "invoice"),
    ("忘记密码了", "password"),
    ("密码怎么重置", "password"),
    ("how do I reset my password", "password"),
    ("forgot my password", "password"),
    ("忘記密碼怎麼辦", "password"),
    ("报销单怎么导出", "export"),
    ("导出Excel失败", "export"),
    ("export my expense report", "export"),
    ("how to export to excel", "export"),
    ("報銷單匯出", "export"),
]
CONFIDENT = "发票查验失败"  # a training message: the sparse model alone is sure of it
UNSURE = "hello there"  # hardly an n-gram of any intent's: no model is sure of it
# CONFIDENT's n-grams in a message most of whose characters no training example has: TF-IDF drops the unknown
# n-grams, so the gate sees nearly CONFIDENT and is as sure, on a third of the message
MOSTLY_UNKNOWN = "发票查验失败咕噜咕噜啊吧啊吧嗯嗯嗯"


def _train(
    gate: float | None,
    embedding: bool = True,
    calibration: str = "none",
    coverage: float = 0.5,
    **settings: Any,
) -> NLUPipeline:
    """Fifteen messages calibrate degenerately (every fold separable: T hits its lower bound and sharpens every
    confidence to 1), so the behaviour is tested on raw confidences and calibration on its own."""
    steps: list[dict[str, Any]] = [{"name": "normalizer"}, {"name": "tokenizer"}]
    if embedding:
        steps.append({"name": "embedding"})
    classifier = {
        "name": "tfidf_classifier",
        "sparse_gate": gate,
        "calibration": calibration,
        "gate_coverage": coverage,
        **settings,
    }
    steps += [classifier, {"name": "fallback"}]
    data = TrainingData([Example(t, i) for t, i in SMALL])
    return NLUPipeline.train(data, PipelineConfig.from_dict({"pipeline": steps}), Context(DATA_DIR))


@pytest.fixture(scope="module")
def gated() -> NLUPipeline:
    return _train(0.7)


def test_a_confident_message_is_answered_without_the_encoder(gated: NLUPipeline) -> None:
    state = gated.process(CONFIDENT, TODAY)
    assert state.ranking[0][0] == "invoice" and state.ranking[0][1] >= 0.7
    assert state.embedding is None and state.encode is None  # never encoded


def test_an_unsure_message_goes_through_the_encoder_and_the_full_model(gated: NLUPipeline) -> None:
    state = gated.process(UNSURE, TODAY)
    assert state.embedding is not None and state.embedding.shape == (512,)
    ungated = _train(None).process(UNSURE, TODAY)
    assert state.ranking == ungated.ranking


def test_the_share_of_known_character_n_grams(gated: NLUPipeline) -> None:
    classifier = gated.classifier()
    scorer = classifier.gate.scorer()
    coverage = {
        text: scorer.tfidf(classifier._sparse_doc(gated.process(text, TODAY))).coverage
        for text in (CONFIDENT, MOSTLY_UNKNOWN, "咕噜咕噜")
    }
    assert coverage[CONFIDENT] == 1.0  # a training message
    assert 0 < coverage[MOSTLY_UNKNOWN] < 0.5
    assert coverage["咕噜咕噜"] < 0.2  # only its word boundaries, padded


def test_a_message_the_vectorizer_mostly_does_not_know_goes_to_the_full_model(gated: NLUPipeline) -> None:
    """The defect: babble with a known word in it ("啊吧啊吧嗯嗯咕噜" on nlu_data) got the gate's sharp
    confidence from the few n-grams it knew, and became a dialogue act instead of a fallback."""
    without_floor = _train(0.7, coverage=0).process(MOSTLY_UNKNOWN, TODAY)
    assert without_floor.ranking[0] == ("invoice", pytest.approx(without_floor.ranking[0][1]))
    assert without_floor.ranking[0][1] >= 0.7 and without_floor.embedding is None  # the gate answered
    state = gated.process(MOSTLY_UNKNOWN, TODAY)
    assert state.embedding is not None  # coverage under 0.5: the encoder ran
    assert state.ranking == _train(None).process(MOSTLY_UNKNOWN, TODAY).ranking
    # a message it knows is still the gate's
    assert gated.process(CONFIDENT, TODAY).embedding is None


def test_a_gate_no_message_reaches_is_the_full_model() -> None:
    """sparse_gate: 1.0 — no softmax reaches it, so every message takes the full model."""
    full, never = _train(None), _train(1.0)
    for text in (CONFIDENT, UNSURE, "密码忘了"):
        assert never.process(text, TODAY).ranking == full.process(text, TODAY).ranking


def test_the_gate_is_calibrated_on_its_own_out_of_fold_predictions(gated: NLUPipeline) -> None:
    assert gated.classifier().gate.temperature == 1.0  # calibration: none
    classifier = _train(0.7, calibration="temperature").classifier()
    assert classifier.gate is not None
    assert classifier.gate.temperature != 1.0 and classifier.temperature != 1.0
    assert list(classifier.gate.logreg.classes_) == classifier.fitted[2]
    # the gate's coefficients are the TF-IDF views' only
    features = classifier.fitted[0]
    n_sparse = len(features.word.vocabulary_) + len(features.char.vocabulary_)
    assert classifier.gate.logreg.coef_.shape == (3, n_sparse)


def test_save_load_keeps_the_gate(gated: NLUPipeline, tmp_path: Path) -> None:
    gated.save(tmp_path / "nlu")
    assert (tmp_path / "nlu").rglob("gate.joblib")
    loaded = NLUPipeline.load(tmp_path / "nlu", DATA_DIR)
    for text in (CONFIDENT, UNSURE):
        before, after = gated.process(text, TODAY), loaded.process(text, TODAY)
        assert after.ranking == before.ranking
        assert (after.embedding is None) == (before.embedding is None)


def test_two_intents_have_no_gate() -> None:
    """A binary logistic regression has one row of coefficients; the gate is for multinomial models."""
    data = TrainingData([Example(t, i) for t, i in SMALL if i != "export"])
    steps = [{"name": "normalizer"}, {"name": "tokenizer"}, {"name": "embedding"}]
    steps += [{"name": "tfidf_classifier", "sparse_gate": 0.7, "calibration": "none"}, {"name": "fallback"}]
    pipeline = NLUPipeline.train(data, PipelineConfig.from_dict({"pipeline": steps}), Context(DATA_DIR))
    assert pipeline.classifier().gate is None
    assert {name for name, _ in pipeline.process(UNSURE, TODAY).ranking} == {"invoice", "password"}


def test_without_an_encoder_there_is_nothing_to_gate() -> None:
    sparse = _train(0.7, embedding=False)
    assert sparse.classifier().gate is None
    np.testing.assert_allclose(
        [c for _, c in sparse.process(CONFIDENT, TODAY).ranking],
        [c for _, c in _train(None, embedding=False).process(CONFIDENT, TODAY).ranking],
    )


def test_the_gate_has_a_solver_of_its_own() -> None:
    classifier = _train(0.7, calibration="temperature", gate_solver="newton-cg").classifier()
    assert classifier.gate is not None
    assert classifier.gate.logreg.solver == "newton-cg"
    assert classifier.fitted[1][0].solver == "lbfgs"
    # unset: the gate takes the model's solver
    assert _train(0.7, solver="newton-cg").classifier().gate.logreg.solver == "newton-cg"
    assert _train(0.7).classifier().gate.logreg.solver == "lbfgs"


@pytest.mark.parametrize("solver", ["saga", "", 1, True])
def test_bad_gate_solver(solver: Any) -> None:
    with pytest.raises(ConfigError, match="gate_solver must be one of"):
        tfidf_classifier({"sparse_gate": 0.9, "gate_solver": solver})


@pytest.mark.parametrize("coverage", [1.5, -0.1, False, "0.5", None])
def test_bad_gate_coverage(coverage: Any) -> None:
    with pytest.raises(ConfigError, match="gate_coverage must be a share in"):
        tfidf_classifier({"sparse_gate": 0.9, "gate_coverage": coverage})


@pytest.mark.parametrize("gate", [0, 1.5, -0.2, True, "0.9", [0.9]])
def test_bad_sparse_gate(gate: Any) -> None:
    with pytest.raises(ConfigError, match="sparse_gate must be a confidence in"):
        tfidf_classifier({"sparse_gate": gate})
