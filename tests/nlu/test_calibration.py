"""Calibrated confidence: temperature scaling never reorders intents, is saved with the model, and the
fallback threshold may be set per language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.errors import ConfigError
from bot.nlu import registry
from bot.nlu.classifier import log_softmax, temper
from bot.nlu.evaluation import (
    Scored,
    calibration_metrics,
    choose_thresholds,
    expected_calibration_error,
    plot_reliability,
    reliability_path,
)
from bot.nlu.language import LanguageGuess
from bot.nlu.pipeline import NLUPipeline
from bot.nlu.registry import Context
from bot.nlu.state import FALLBACK_INTENT, ParseState
from bot.nlu.tokenize import Token
from bot.nlu.training_data import Example, TrainingData
from bot.vocabulary import Script
from tests.conftest import DATA_DIR, TODAY, tfidf_classifier

MESSAGES = [
    "发票查验失败了",
    "登入一直失敗",
    "how do I export approved claims",
    "submit的时候一直报error",
    "好的",
]


@pytest.mark.parametrize("temperature", [0.25, 0.6, 1.0, 1.7, 4.0])
def test_temperature_is_monotonic(temperature: float) -> None:
    rng = np.random.default_rng(0)
    log_proba = np.log(rng.dirichlet(np.full(40, 0.3), size=200))
    calibrated = temper(log_proba, temperature)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    for raw, cal in zip(log_proba, calibrated, strict=True):
        order = np.argsort(raw)
        # higher raw score -> higher calibrated confidence: sorting by raw sorts the calibrated row too
        assert np.all(np.diff(cal[order]) >= 0)


def test_trained_model_calibration_keeps_the_ranking(nlu: NLUPipeline) -> None:
    classifier = nlu.classifier()
    assert classifier.temperature != 1.0  # the repository's config calibrates
    states = [nlu.process(text, TODAY) for text in MESSAGES]
    _, raw = classifier.predict_proba(states, calibrated=False)
    _, calibrated = classifier.predict_proba(states)
    for r, c, state in zip(raw, calibrated, states, strict=True):
        assert list(np.argsort(-r, kind="stable")) == list(np.argsort(-c, kind="stable"))
        assert state.ranking[0][1] == pytest.approx(c.max())
        assert state.raw_confidence == pytest.approx(r.max())


def test_save_load_round_trips_the_temperature(nlu: NLUPipeline, tmp_path: Path) -> None:
    nlu.save(tmp_path / "nlu")
    loaded = NLUPipeline.load(tmp_path / "nlu", DATA_DIR)
    assert loaded.classifier().temperature == nlu.classifier().temperature
    for text in MESSAGES:
        assert loaded.parse(text, TODAY) == nlu.parse(text, TODAY)


def test_model_without_calibration_file_loads_uncalibrated(nlu: NLUPipeline, tmp_path: Path) -> None:
    nlu.save(tmp_path / "nlu")
    (calibration,) = (tmp_path / "nlu").glob("*_tfidf_classifier/calibration.json")
    calibration.unlink()
    assert NLUPipeline.load(tmp_path / "nlu", DATA_DIR).classifier().temperature == 1.0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"calibration": "platt"}, "calibration must be one of"),
        ({"calibration_folds": 1}, "calibration_folds must be an integer"),
        ({"word_min_df": 0}, "word_min_df must be an integer ≥ 1"),
        ({"word_min_df": 1.0}, r"word_min_df must be .* or a share of them in \(0, 1\), got 1.0"),
        ({"word_min_df": 0.0}, "word_min_df must be an integer ≥ 1"),
        ({"word_min_df": True}, "word_min_df must be an integer ≥ 1"),
        ({"char_min_df": "2"}, "char_min_df must be an integer ≥ 1"),
        ({"solver": "saga"}, "solver must be one of"),
    ],
)
def test_bad_calibration_config(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tfidf_classifier(params)


def _fallback(threshold: Any) -> Any:
    params = registry.resolve_config("fallback", {"threshold": threshold})
    return registry.create("fallback", params, Context(DATA_DIR))


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        ({"zh": 0.3, "en": 0.3}, "one for each of"),
        ({"zh": 0.3, "zh-Hant": 0.3, "en": 0.3, "fr": 0.3}, "one for each of"),
        ({"zh": 0.3, "zh-Hant": 1.5, "en": 0.3}, "threshold zh-Hant must be a number between 0 and 1"),
        ({"zh": 0.3, "zh-Hant": "high", "en": 0.3}, "threshold zh-Hant must be a number"),
        (-0.1, "threshold must be a number between 0 and 1"),
    ],
)
def test_bad_fallback_threshold(threshold: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _fallback(threshold)


@pytest.mark.parametrize(
    ("language", "confidence", "falls_back"),
    [
        ("zh", 0.45, True),
        ("zh", 0.55, False),
        ("mixed", 0.45, True),  # mixed messages take zh's threshold
        ("zh-Hant", 0.35, False),
        ("en", 0.55, True),
        ("en", 0.65, False),
    ],
)
def test_fallback_threshold_per_language(language: str, confidence: float, falls_back: bool) -> None:
    fallback = _fallback({"zh": 0.5, "zh-Hant": 0.3, "en": 0.6})
    state = ParseState("x", TODAY, language=LanguageGuess(language, Script.HANS))
    state.ranking = [("login_failed", confidence), ("other", 0.0)]
    fallback.process(state)
    assert (state.intent == FALLBACK_INTENT) is falls_back


@pytest.mark.parametrize(
    ("confidence", "correct", "ece"),
    [
        ([0.95, 0.95, 0.55, 0.55], [1, 1, 1, 0], 0.05),
        ([0.9, 0.9], [1, 1], 0.1),
        ([0.5, 0.5], [1, 0], 0.0),
    ],
)
def test_expected_calibration_error(confidence: list[float], correct: list[int], ece: float) -> None:
    assert expected_calibration_error(confidence, correct) == pytest.approx(ece)


def test_reliability_diagram_is_written_beside_the_confusion_matrix(tmp_path: Path) -> None:
    examples = [
        Example("发票查验失败", "invoice_verification_failed"),
        Example("明天会下雨吗", "out_of_scope"),
    ]
    scored = [
        Scored(examples[i % 2], examples[0].intent, 0.3 + 0.06 * i, "zh", [], 1.0, 0.2 + 0.05 * i)
        for i in range(10)
    ]
    metrics = calibration_metrics(scored)
    assert set(metrics) == {"bins", "ece_before", "ece_after"}
    path = reliability_path(tmp_path / "cv.png")
    assert path == tmp_path / "cv_reliability.png"
    plot_reliability(scored, path)
    assert path.read_bytes().startswith(b"\x89PNG")


def test_thresholds_are_chosen_per_language_with_mixed_as_zh() -> None:
    oos, intent = (
        Example("明天会下雨吗", "out_of_scope"),
        Example("发票查验失败", "invoice_verification_failed"),
    )
    scored = [
        Scored(oos, intent.intent, 0.4, "mixed", [], 1.0),  # only a threshold above 0.4 gets it right
        Scored(intent, intent.intent, 0.9, "zh", [], 1.0),
        Scored(intent, intent.intent, 0.3, "en", [], 1.0),  # any threshold above 0.3 gets it wrong
        Scored(intent, intent.intent, 0.3, "zh-Hant", [], 1.0),
    ]
    assert choose_thresholds(scored) == {"zh": 0.405, "zh-Hant": 0.0, "en": 0.0}


ONE_AT_A_TIME = [
    *MESSAGES,
    "登錄的時候提示密碼錯誤，已經試了好幾次",
    "税局那边说这张票对不上",
    "please help: POST /api/v1/invoices returned 500 Internal Server Error",
    "🙂",
    "x" * 3000,
]


def test_one_message_scoring_matches_the_batch_path(nlu: NLUPipeline) -> None:
    """Serving scores one message from vocabulary lookups and coefficient rows (no sparse matrices); it
    must give the batch path's numbers exactly, or calibration and thresholds would not carry over."""
    classifier = nlu.classifier()
    states = [nlu.process(text, TODAY) for text in ONE_AT_A_TIME]
    features, estimators, _ = classifier.fitted
    batch = features.logreg_log_proba(classifier._docs(states), estimators[0])
    for i, state in enumerate(states):
        one = classifier._scorer().log_proba(classifier._docs([state])[0])
        np.testing.assert_allclose(one[0], batch[i], rtol=0, atol=1e-9)


def test_the_coefficients_are_saved_in_half_precision_and_parse_as_trained(
    nlu: NLUPipeline, tmp_path: Path
) -> None:
    """A quarter of the size on disk (float16, xz-compressed), and the trained model already holds the
    rounded values, so a reloaded model gives the same parses as the one evaluated."""
    import joblib

    nlu.save(tmp_path / "nlu")
    (saved,) = (tmp_path / "nlu").glob("*_tfidf_classifier/classifier.joblib")
    assert saved.read_bytes()[:6] == b"\xfd7zXZ\x00"  # xz: about half of zlib's size for the vocabularies
    _, estimators, _ = joblib.load(saved)
    assert estimators[0].coef_.dtype == np.float16
    trained = nlu.classifier().fitted[1][0].coef_
    assert trained.dtype == np.float64
    np.testing.assert_array_equal(trained, trained.astype(np.float16).astype(np.float64))
    loaded = NLUPipeline.load(tmp_path / "nlu", DATA_DIR)
    for text in [*MESSAGES, "发票查验失败了", "I forgot my password", "转人工"]:
        assert loaded.parse(text, TODAY)["intent_ranking"] == nlu.parse(text, TODAY)["intent_ranking"]


def _word_vocabulary(texts: list[str], labels: list[str], min_df: float) -> set[str]:
    states = []
    for text in texts:
        state = ParseState(text, TODAY)
        state.tokens = [Token(word, 0, len(word), word) for word in text.split()]
        states.append(state)
    data = TrainingData([Example(t, y) for t, y in zip(texts, labels, strict=True)])
    params = registry.resolve_config("tfidf_classifier", {"word_min_df": min_df, "calibration": "none"})
    classifier = registry.create("tfidf_classifier", params, Context(DATA_DIR))
    classifier.train(data, states)
    return set(classifier.fitted[0].word.vocabulary_)


def test_word_min_df_drops_the_word_ngrams_seen_in_one_message_only() -> None:
    texts, labels = ["reset my password", "reset my login", "export my report"], ["login", "login", "export"]
    assert {"password", "export", "reset my"} <= _word_vocabulary(texts, labels, 1)
    assert _word_vocabulary(texts, labels, 2) == {"reset", "my", "reset my"}


def test_a_min_df_share_keeps_every_ngram_of_small_data_and_drops_the_rare_ones_of_large() -> None:
    small = ["reset my password", "reset my login", "export my report"]
    assert "password" in _word_vocabulary(small, ["login", "login", "export"], 0.0005)  # 3 × 0.0005 < 1
    # 2,400 messages: 1.2 of them, so an n-gram must be in two
    large = [f"reset my password {n}" for n in range(1_200)] + [f"export report {n}" for n in range(1_200)]
    vocabulary = _word_vocabulary(large, ["login"] * 1_200 + ["export"] * 1_200, 0.0005)
    assert {"reset my", "export report"} <= vocabulary
    assert "7" in vocabulary  # in two messages: "reset my password 7" and "export report 7"
    assert not {"password 7", "report 7"} & vocabulary  # each in one


def test_a_min_df_that_leaves_no_ngram_is_a_config_error_saying_what_to_set() -> None:
    # every word in one message only: min_df 2 leaves nothing (scikit-learn's "After pruning, no terms remain")
    with pytest.raises(
        ConfigError, match=r"word_min_df 2 leaves no word n-gram in 3 training messages: set "
    ):
        _word_vocabulary(["hi", "bye", "thx"], ["greet", "goodbye", "thanks"], 2)


@pytest.mark.parametrize("solver", ["newton-cg", "lbfgs"])
def test_the_final_fit_does_not_depend_on_the_calibration_folds_beside_it(solver: str) -> None:
    """The final fit runs in one batch with the calibration folds' fits: the model is the one an uncalibrated
    training fits, and only the temperature differs."""
    texts = [
        f"{verb} my {thing} {n}"
        for verb in ("reset", "export", "approve")
        for thing in ("a", "b")
        for n in range(4)
    ]
    labels = [text.split()[0] for text in texts]
    states = []
    for text in texts:
        state = ParseState(text, TODAY)
        state.tokens = [Token(word, 0, len(word), word) for word in text.split()]
        states.append(state)
    data = TrainingData([Example(t, y) for t, y in zip(texts, labels, strict=True)])
    fitted = []
    for calibration in ("temperature", "none"):
        params = registry.resolve_config("tfidf_classifier", {"calibration": calibration, "solver": solver})
        classifier = registry.create("tfidf_classifier", params, Context(DATA_DIR))
        classifier.train(data, states)
        fitted.append(classifier)
    calibrated, raw = fitted
    np.testing.assert_array_equal(calibrated.fitted[1][0].coef_, raw.fitted[1][0].coef_)
    assert calibrated.fitted[2] == raw.fitted[2] == ["approve", "export", "reset"]
    assert raw.temperature == 1.0
    assert calibrated.temperature != 1.0  # three folds of eight examples per intent: fitted, not defaulted


def test_the_numpy_softmaxes_are_scipys() -> None:
    """Parsing uses numpy's log-softmax and softmax (scipy's cost 2-3x as much on one message's row): the
    same numbers as scipy's, huge and tiny scores included."""
    from scipy.special import log_softmax as scipy_log_softmax
    from scipy.special import softmax as scipy_softmax

    rng = np.random.default_rng(0)
    scores = np.vstack(
        [rng.normal(0, 5, (20, 150)), [[1000.0, -1000.0, 0.0] + [0.0] * 147], [[-745.0] * 150]]
    )
    np.testing.assert_allclose(log_softmax(scores), scipy_log_softmax(scores, axis=1), rtol=0, atol=1e-12)
    for temperature in (0.5, 1.0, 2.5, np.full((len(scores), 1), 1.7)):
        tempered = temper(scores, temperature)
        np.testing.assert_allclose(
            tempered, scipy_softmax(scores / temperature, axis=1), rtol=1e-12, atol=1e-300
        )
        np.testing.assert_allclose(tempered.sum(axis=1), 1.0)
