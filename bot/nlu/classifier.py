"""Intent classification with scikit-learn: TF-IDF word n-grams over lemmas plus character n-grams over
the normalised text, and the sentence vector of an ``embedding`` featurizer earlier in the pipeline when
there is one, into a multinomial logistic regression (optionally averaged with a one-hidden-layer MLP).
Confidences are calibrated by temperature scaling (Guo et al. 2017): one temperature, fitted on out-of-fold
predictions at training time, divides the log-probabilities, so it never reorders the intents of a message.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from bot.errors import ConfigError, DataError
from bot.nlu.registry import Context
from bot.nlu.state import RANKING_LENGTH, ParseState
from bot.nlu.training_data import OUT_OF_SCOPE, TrainingData

MODELS = ("logreg", "mlp", "ensemble")
SOLVERS = ("lbfgs", "newton-cg")
CLASS_WEIGHTS = (None, "balanced")
CALIBRATIONS = ("temperature", "none")
logger = logging.getLogger(__name__)
CALIBRATION_FILE = "calibration.json"
GATE_FILE = "gate.joblib"
CHAR_ANALYZERS = ("char", "char_wb")
Doc = tuple[str, str, Any, bool]  # word view, character view, sentence vector (or None), Chinese?


def _word_doc(state: ParseState) -> str:
    return " ".join(state.request_lemmas)


def _chinese(state: ParseState) -> bool:
    return state.language is None or state.language.language != "en"


class TfidfIntentClassifier:
    name: ClassVar[str] = "tfidf_classifier"
    trainable: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        "word_ngrams": [1, 2],
        # An n-gram seen in fewer training messages than this (an integer), or in a smaller share of them (a
        # fraction < 1: scales with the data, so small data keeps every n-gram), is not a feature. Each
        # feature costs a coefficient per intent and the solvers' time grows with their number: on CLINC150
        # (150 intents) word_min_df 2 halves the features and the training time at the same accuracy
        # (docs/nlu.md, "Training cost").
        "word_min_df": 1,
        "char_ngrams": [1, 4],
        "char_min_df": 1,
        "char_analyzer": "char_wb",
        # Weight of the word view for Chinese messages: jieba's segmentation adds noise that the character
        # view, which sees every word anyway, does not have (docs/nlu.md, "Chinese features").
        "zh_word_weight": 1.0,
        "model": "logreg",
        "C": 20.0,
        "max_iter": 3000,
        # scikit-learn's LogisticRegression solver. newton-cg fits nlu_data in a fraction of lbfgs's time
        # (lbfgs spends most of it in its bookkeeping over intents × features coefficients) and is what
        # nlu_data/config.yml sets; lbfgs stays the default for data like CLINC150's 15,000 messages × 150
        # intents, where newton-cg is the slower (docs/nlu.md, "Training cost").
        "solver": "lbfgs",
        "mlp_hidden": 512,
        "mlp_epochs": 30,
        "random_state": 0,
        # Train on out_of_scope examples as a class of their own; a message classified as out_of_scope
        # falls back. With false, out-of-scope is detected by the confidence threshold alone.
        "out_of_scope_class": True,
        # "temperature": one temperature fitted on out-of-fold predictions (calibration_folds folds, run in
        # parallel) so that a confidence threshold means the same for every intent; "none": raw softmax.
        "calibration": "temperature",
        "calibration_folds": 3,
        # With a sentence encoder in the pipeline: a second logistic regression on the TF-IDF views alone
        # answers a message when its calibrated confidence is at least this, and the encoder never runs for
        # it (most messages: docs/nlu.md, "The sparse gate"); below it, the full model answers. null: off.
        "sparse_gate": None,
        # ...but only for a message whose character n-grams the vectorizer mostly knows: below this share
        # (babble, wording unlike any training example) the gate's sharp confidence means little and the
        # full model answers. 0: no floor.
        "gate_coverage": 0.5,
        # The gate's own solver; null: ``solver``'s. The gate is a model of the TF-IDF views alone, where
        # L-BFGS needs ~8x newton-cg's iterations (docs/nlu.md, "Training cost").
        "gate_solver": None,
        # Weights of the training messages per intent in the logistic regressions (model: logreg only): null,
        # every message weighs the same; "balanced", each intent weighs the same in all (n / (intents × its
        # messages)), as in Rasa's LogisticRegressionClassifier: an intent with a handful of examples among
        # hundreds of another's is not drowned (docs/nlu.md, "Rare intents").
        "class_weight": None,
    }

    def __init__(
        self,
        config: dict[str, Any],
        context: Context,
        fitted: Any = None,
        temperature: float = 1.0,
        gate: Gate | None = None,
    ) -> None:
        if config["model"] not in MODELS:
            raise ConfigError(f"tfidf_classifier model must be one of {MODELS}, got {config['model']!r}")
        if config["char_analyzer"] not in CHAR_ANALYZERS:
            raise ConfigError(
                f"tfidf_classifier char_analyzer must be one of {CHAR_ANALYZERS}, "
                f"got {config['char_analyzer']!r}"
            )
        if config["solver"] not in SOLVERS:
            raise ConfigError(f"tfidf_classifier solver must be one of {SOLVERS}, got {config['solver']!r}")
        if config["gate_solver"] is not None and config["gate_solver"] not in SOLVERS:
            raise ConfigError(
                f"tfidf_classifier gate_solver must be one of {SOLVERS} or null (solver's), "
                f"got {config['gate_solver']!r}"
            )
        if config["class_weight"] not in CLASS_WEIGHTS:
            raise ConfigError(
                f"tfidf_classifier class_weight must be balanced or null, got {config['class_weight']!r}"
            )
        if config["class_weight"] is not None and config["model"] != "logreg":
            raise ConfigError(
                f"tfidf_classifier class_weight weighs the logistic regression; scikit-learn's MLP takes no "
                f"weights: use model: logreg, or class_weight: null (model is {config['model']!r})"
            )
        if config["calibration"] not in CALIBRATIONS:
            raise ConfigError(
                f"tfidf_classifier calibration must be one of {CALIBRATIONS}, got {config['calibration']!r}"
            )
        if not isinstance(config["calibration_folds"], int) or config["calibration_folds"] < 2:
            raise ConfigError(
                f"tfidf_classifier calibration_folds must be an integer ≥ 2, got {config['calibration_folds']!r}"
            )
        sparse_gate = config["sparse_gate"]
        if sparse_gate is not None and (
            isinstance(sparse_gate, bool)
            or not isinstance(sparse_gate, int | float)
            or not 0 < sparse_gate <= 1
        ):
            raise ConfigError(
                f"tfidf_classifier sparse_gate must be a confidence in (0, 1], or null, got {sparse_gate!r}"
            )
        coverage = config["gate_coverage"]
        if isinstance(coverage, bool) or not isinstance(coverage, int | float) or not 0 <= coverage <= 1:
            raise ConfigError(
                f"tfidf_classifier gate_coverage must be a share in [0, 1] of the message's character n-grams, "
                f"got {coverage!r}"
            )
        for key in ("word_min_df", "char_min_df"):
            value = config[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or (isinstance(value, int) and value < 1)
                or (isinstance(value, float) and not 0 < value < 1)
            ):
                raise ConfigError(
                    f"tfidf_classifier {key} must be an integer ≥ 1 (training messages) or a share of them in "
                    f"(0, 1), got {value!r}"
                )
        self.config = config
        self.fitted = fitted  # (features, [estimators], classes)
        self.temperature = temperature
        self.gate = gate  # the sparse-only model of sparse_gate, when trained with one
        self._one_doc: _OneDocScorer | None = None  # built on the first single-message parse

    @staticmethod
    def _docs(states: list[ParseState]) -> list[Doc]:
        return [(_word_doc(s), s.request_text, s.sentence_vector(), _chinese(s)) for s in states]

    @staticmethod
    def _sparse_doc(state: ParseState) -> Doc:
        """``state``'s document without its sentence vector: what the gate reads, encoding nothing."""
        return (_word_doc(state), state.request_text, None, _chinese(state))

    def train(self, data: TrainingData, states: list[ParseState]) -> None:
        labels = [ex.intent for ex in data.examples]
        keep_oos = self.config["out_of_scope_class"]
        pairs = [(s, y) for s, y in zip(states, labels, strict=True) if keep_oos or y != OUT_OF_SCOPE]
        if len({y for _, y in pairs}) < 2:
            raise DataError(
                "<training data>", None, "need examples of at least two intents to train a classifier"
            )
        features = _TwoViewFeatures(self.config)
        # float32: scikit-learn's lbfgs and newton-cg keep X's precision, and sparse products over float32 take a
        # third less time (the coefficients are kept in float16 anyway: _half_precision)
        x = features.fit_transform(self._docs([s for s, _ in pairs])).astype(np.float32)
        y = np.array([lbl for _, lbl in pairs])
        # the gate is a multinomial logistic regression beside a single one (its one-message scorer's shape)
        gated = (
            self.config["sparse_gate"] is not None
            and features.dense_dim > 0
            and self.config["model"] == "logreg"
            and len(set(y)) > 2
        )
        fit = _fit(self.config, x, y, x.shape[1] - features.dense_dim if gated else None)
        self.fitted = (
            features,
            _half_precision(fit.estimators),
            [str(c) for c in fit.estimators[0].classes_],
        )
        self._one_doc = None
        self.temperature = fit.temperature
        self.gate = None
        if fit.gate is not None:
            _half_precision([fit.gate])
            self.gate = Gate(fit.gate, fit.gate_temperature, _gate_settings(self.config), features)

    def _log_proba(self, states: list[ParseState]) -> Any:
        """Uncalibrated log-probabilities, (n, classes)."""
        features, estimators, classes = self.fitted
        docs = self._docs(states)
        if len(estimators) == 1 and len(classes) > 2 and hasattr(estimators[0], "coef_"):
            if len(docs) == 1:
                return self._scorer().log_proba(docs[0])
            return features.logreg_log_proba(docs, estimators[0])
        x = features.transform(docs)
        proba = sum(e.predict_proba(x) for e in estimators) / len(estimators)
        return np.log(np.clip(proba, 1e-300, None))

    def _scorer(self) -> _OneDocScorer:
        scorer = self._one_doc
        if scorer is None:
            features, estimators, _ = self.fitted
            scorer = self._one_doc = _OneDocScorer(features, estimators[0])
        return scorer

    def predict_proba(self, states: list[ParseState], calibrated: bool = True) -> tuple[list[str], Any]:
        """Class names and an (n, classes) probability matrix (temperature-scaled unless ``calibrated`` is
        false)."""
        log_proba = self._log_proba(states)
        temperatures = np.full((len(states), 1), self.temperature)
        if (gate := self.gate) is not None:
            for i, state in enumerate(states):
                doc = self._sparse_doc(state)
                gated = gate.answer(doc, gate.scorer().tfidf(doc))
                if gated is not None:  # the row process() gives: the gate's
                    log_proba[i], temperatures[i] = gated[0], gate.temperature
        return self.fitted[2], temper(log_proba, temperatures if calibrated else 1.0)

    def process(self, state: ParseState) -> None:
        if self.fitted is None or not state.normalized_text.strip():
            state.ranking = []
            return
        gate = self.gate
        if gate is None:
            log_proba = self._log_proba([state])
            self._rank(state, temper(log_proba, self.temperature)[0], log_proba)
            return
        # A gate is trained only beside a single multinomial logistic regression, so the full model's
        # one-message scorer applies too, on the same TF-IDF
        doc = self._sparse_doc(state)
        tfidf = gate.scorer().tfidf(doc)
        gated = gate.answer(doc, tfidf)
        if gated is not None:
            self._rank(state, temper(gated, gate.temperature)[0], gated)
            state.encode = None  # the sentence vector is not needed: never computed
            return
        log_proba = self._scorer().log_proba((doc[0], doc[1], state.sentence_vector(), doc[3]), tfidf)
        self._rank(state, temper(log_proba, self.temperature)[0], log_proba)

    def _rank(self, state: ParseState, row: Any, log_proba: Any) -> None:
        # the parse carries the best RANKING_LENGTH intents: only those are sorted and built (CLINC150's 151
        # intents: 4 µs against 10); ties in the order of the classes, as the batch path's argmax
        best = np.argpartition(-row, min(RANKING_LENGTH, len(row)) - 1)[:RANKING_LENGTH]
        best.sort()
        order = best[np.argsort(-row[best], kind="stable")]
        # names indexed by Python ints, zipped with Python floats: half the time of indexing with numpy's
        classes = self.fitted[2]
        state.ranking = list(zip([classes[i] for i in order.tolist()], row[order].tolist(), strict=True))
        state.raw_confidence = float(np.exp(log_proba[0, order[0]]))

    def persist(self, directory: Path) -> None:
        import joblib

        directory.mkdir(parents=True, exist_ok=True)
        features, estimators, classes = self.fitted
        saved = [_coef_as(e, np.float16) for e in estimators]  # exactly the trained values (_half_precision)
        # xz: the vocabularies and float16 coefficients take about half of zlib's space (nlu_data 2.5 → 1.4
        # MiB) for ~0.1 s more at load; joblib.load reads either.
        joblib.dump((features, saved, classes), directory / "classifier.joblib", compress=("xz", 6))
        calibration: dict[str, float] = {"temperature": self.temperature}
        if self.gate is not None:
            joblib.dump(_coef_as(self.gate.logreg, np.float16), directory / GATE_FILE, compress=("xz", 6))
            calibration["gate_temperature"] = self.gate.temperature
        (directory / CALIBRATION_FILE).write_text(json.dumps(calibration) + "\n")

    @classmethod
    def load(cls, config: dict[str, Any], directory: Path, context: Context) -> TfidfIntentClassifier:
        import joblib

        calibration = directory / CALIBRATION_FILE
        # Models saved before calibration have no file: temperature 1 is their raw softmax.
        temperatures = json.loads(calibration.read_text()) if calibration.exists() else {}
        temperature = temperatures.get("temperature", 1.0)
        features, saved, classes = joblib.load(directory / "classifier.joblib")
        estimators = [_coef_as(e, np.float64) for e in saved]  # scikit-learn computes in float64
        gate = None
        if (directory / GATE_FILE).exists() and config["sparse_gate"] is not None:
            gate = Gate(
                _coef_as(joblib.load(directory / GATE_FILE), np.float64),
                float(temperatures.get("gate_temperature", 1.0)),
                _gate_settings(config),
                features,
            )
        return cls(config, context, (features, estimators, classes), float(temperature), gate)


def _gate_settings(config: dict[str, Any]) -> tuple[float, float]:
    """The gate's (confidence threshold, n-gram coverage floor) from the classifier's config."""
    return float(config["sparse_gate"]), float(config["gate_coverage"])


def temper(log_proba: Any, temperature: Any) -> Any:
    """softmax(log p / T): T > 1 softens, T < 1 sharpens; a monotonic map of each row, so the order of the
    intents never changes. ``temperature``: one, or an (n, 1) column of one per row."""
    return np.exp(log_softmax(log_proba / temperature))


def log_softmax(scores: Any) -> Any:
    """Row-wise log-softmax of a 2-d array: scipy.special.log_softmax's formula in plain numpy, ~4 µs on a
    message's one row of scores against scipy's ~11 (its array-API dispatch). The batch and one-message
    paths both use it, so they stay equal."""
    shifted = scores - scores.max(axis=1, keepdims=True)  # exp() cannot overflow
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _fit_estimators(config: dict[str, Any], x: Any, y: Any) -> list[Any]:
    from sklearn.neural_network import MLPClassifier

    estimators: list[Any] = []
    if config["model"] in ("logreg", "ensemble"):
        estimators.append(_logreg(config, x, y))
    if config["model"] in ("mlp", "ensemble"):
        mlp = MLPClassifier(
            hidden_layer_sizes=(config["mlp_hidden"],),
            max_iter=config["mlp_epochs"],
            random_state=config["random_state"],
        )
        estimators.append(mlp.fit(x, y))
    return estimators


def _coef_as(estimator: Any, dtype: Any) -> Any:
    """A shallow copy of ``estimator`` with its coefficients (if it has any) in ``dtype``."""
    if not hasattr(estimator, "coef_"):
        return estimator
    converted = copy.copy(estimator)
    converted.coef_ = estimator.coef_.astype(dtype)
    return converted


def _half_precision(estimators: list[Any]) -> list[Any]:
    """The logistic regression's coefficients rounded to float16, as the model is saved (a quarter of the
    size: 81 → 20 MiB on CLINC150): the trained model is the saved one, so a reloaded model parses exactly
    as the one evaluated. Rounding moves a confidence by at most ~1e-4 and changed no intent on nlu_data."""
    for estimator in estimators:
        if hasattr(estimator, "coef_"):
            estimator.coef_ = estimator.coef_.astype(np.float16).astype(np.float64)
    return estimators


def _logreg(config: dict[str, Any], x: Any, y: Any, solver: str | None = None) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(
        C=config["C"],
        max_iter=config["max_iter"],
        solver=solver or config["solver"],
        class_weight=config["class_weight"],
    ).fit(x, y)


def _fit_gate(config: dict[str, Any], x: Any, y: Any, columns: int) -> Any:
    """The sparse gate: a logistic regression on the first ``columns`` (the TF-IDF views) of ``x``."""
    return _logreg(config, x[:, :columns], y, config["gate_solver"])


def _log_proba_in(estimators: list[Any], x: Any, classes: list[str]) -> Any:
    """The estimators' averaged log-probabilities of ``x``'s rows, in ``classes`` order."""
    proba = np.full((x.shape[0], len(classes)), 1e-300)
    index = [classes.index(str(c)) for c in estimators[0].classes_]
    proba[:, index] = sum(e.predict_proba(x) for e in estimators) / len(estimators)
    return np.log(np.clip(proba, 1e-300, None))


def _out_of_fold(
    config: dict[str, Any], x: Any, y: Any, train: Any, test: Any, classes: list[str], gate: int | None
) -> tuple[Any, Any]:
    """Log-probabilities of ``test`` rows from the model, and from the gate when ``gate`` (its columns) is
    set, both fitted on ``train`` rows."""
    full = _log_proba_in(_fit_estimators(config, x[train], y[train]), x[test], classes)
    if gate is None:
        return full, None
    sparse = _fit_gate(config, x[train], y[train], gate)
    return full, _log_proba_in([sparse], x[test][:, :gate], classes)


@dataclass
class _Fit:
    estimators: list[Any]
    temperature: float = 1.0
    gate: Any = None
    gate_temperature: float = 1.0


def _fit(config: dict[str, Any], x: Any, y: Any, gate: int | None = None) -> _Fit:
    """The estimators on all of ``x`` (and the sparse gate on its first ``gate`` columns), and the
    temperatures minimising the negative log-likelihood of out-of-fold predictions (stratified k-fold,
    out_of_scope a class like the others). The final fits and the folds' fits run side by side in one batch.
    The TF-IDF vocabulary is the full data's: an n-gram only a held-out fold has gets no weight in that
    fold's model, so this leaks nothing that matters."""
    from joblib import Parallel, delayed
    from sklearn.model_selection import StratifiedKFold

    splits: list[tuple[Any, Any]] = []
    if config["calibration"] == "temperature":
        # Every class needs an example in every fold; tiny data sets (tests) get fewer folds, or none.
        folds = min(config["calibration_folds"], int(np.unique(y, return_counts=True)[1].min()))
        if folds < 2:
            logger.info("an intent has a single example: confidences left uncalibrated")
        else:
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config["random_state"])
            splits = list(splitter.split(np.zeros(len(y)), y))
    classes = [str(c) for c in np.unique(y)]  # the order LogisticRegression.classes_ has
    jobs = [delayed(_fit_estimators)(config, x, y)]
    if gate is not None:
        jobs.append(delayed(_fit_gate)(config, x, y, gate))
    jobs += [delayed(_out_of_fold)(config, x, y, train, test, classes, gate) for train, test in splits]
    done = Parallel(n_jobs=min(len(jobs), os.cpu_count() or 1))(jobs)  # one job: in this process
    fit = _Fit(done[0], gate=done[1] if gate is not None else None)
    if splits:
        parts = done[len(done) - len(splits) :]
        gold = np.array([classes.index(str(label)) for label in y])
        fit.temperature = _temperature(_stitched(splits, [full for full, _ in parts]), gold)
        if gate is not None:
            fit.gate_temperature = _temperature(_stitched(splits, [sparse for _, sparse in parts]), gold)
    return fit


def _stitched(splits: list[tuple[Any, Any]], parts: list[Any]) -> Any:
    """The folds' out-of-fold log-probabilities as one matrix in the original row order."""
    log_proba = np.empty((sum(len(test) for _, test in splits), parts[0].shape[1]))
    for (_, test), part in zip(splits, parts, strict=True):
        log_proba[test] = part
    return log_proba


def _temperature(log_proba: Any, gold: Any) -> float:
    """The T minimising the mean negative log-likelihood of softmax(log_proba / T) at the gold classes."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        scaled = log_softmax(log_proba / np.exp(log_t))
        return float(-scaled[np.arange(len(gold)), gold].mean())

    best = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
    return round(float(np.exp(best.x)), 4)


def _fit_view(vectorizer: Any, texts: list[str], view: str) -> Any:
    """``vectorizer.fit_transform(texts)``; a min_df that leaves the view no n-gram is a config error that
    says what to set, not scikit-learn's ValueError."""
    try:
        return vectorizer.fit_transform(texts)
    except ValueError as exc:
        if vectorizer.min_df == 1 or "no terms remain" not in str(exc):
            raise
        raise ConfigError(
            f"tfidf_classifier {view}_min_df {vectorizer.min_df!r} leaves no {view} n-gram in "
            f"{len(texts)} training messages: set it lower, or as a share (e.g. 0.0005: n-grams in fewer than "
            "1 in 2,000 messages), which keeps every n-gram of small data"
        ) from exc


class _TwoViewFeatures:
    """TF-IDF over the word view (lemmas) and the character view (normalised text) of each document, and
    the dense sentence vectors when training had them."""

    def __init__(self, config: dict[str, Any]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.word = TfidfVectorizer(
            ngram_range=tuple(config["word_ngrams"]),
            sublinear_tf=True,
            min_df=config["word_min_df"],
            token_pattern=r"\S+",
            lowercase=False,
        )
        self.char = TfidfVectorizer(
            analyzer=config["char_analyzer"],
            ngram_range=tuple(config["char_ngrams"]),
            sublinear_tf=True,
            min_df=config["char_min_df"],
            lowercase=False,
        )
        self.zh_word_weight = float(config["zh_word_weight"])
        self.dense_dim = 0  # set by fit_transform when the documents carry sentence vectors

    def fit_transform(self, docs: list[Doc]) -> Any:
        word = _fit_view(self.word, [w for w, _, _, _ in docs], "word")
        char = _fit_view(self.char, [c for _, c, _, _ in docs], "char")
        vectors = [v for _, _, v, _ in docs if v is not None]
        self.dense_dim = len(vectors[0]) if vectors else 0
        return self._stack(word, char, docs)

    def transform(self, docs: list[Doc]) -> Any:
        return self._stack(
            self.word.transform([w for w, _, _, _ in docs]),
            self.char.transform([c for _, c, _, _ in docs]),
            docs,
        )

    def logreg_log_proba(self, docs: list[Doc], logreg: Any) -> Any:
        """A multinomial logistic regression's ``predict_log_proba`` without stacking the dense view into a
        sparse matrix first: the same numbers, a millisecond less per message (what hstack costs)."""
        from scipy.sparse import hstack

        sparse = hstack(
            self._sparse_views(
                self.word.transform([w for w, _, _, _ in docs]),
                self.char.transform([c for _, c, _, _ in docs]),
                docs,
            )
        ).tocsr()
        n = sparse.shape[1]
        scores = sparse @ logreg.coef_[:, :n].T + logreg.intercept_
        dim = getattr(self, "dense_dim", 0)
        if dim:
            scores += self._dense(docs, dim) @ logreg.coef_[:, n:].T
        return log_softmax(scores)

    def _sparse_views(self, word: Any, char: Any, docs: list[Doc]) -> list[Any]:
        from scipy.sparse import diags

        zh_weight = getattr(self, "zh_word_weight", 1.0)  # models saved before it was a setting: 1.0
        if zh_weight != 1.0:
            word = diags([zh_weight if zh else 1.0 for _, _, _, zh in docs]) @ word
        return [word, char]

    @staticmethod
    def _dense(docs: list[Doc], dim: int) -> Any:
        zeros = np.zeros(dim, dtype=np.float32)
        return np.stack([zeros if v is None else v for _, _, v, _ in docs])

    def _stack(self, word: Any, char: Any, docs: list[Doc]) -> Any:
        from scipy.sparse import csr_matrix, hstack

        views = self._sparse_views(word, char, docs)
        dim = getattr(self, "dense_dim", 0)  # models saved before the dense view have none
        if dim:
            views.append(csr_matrix(self._dense(docs, dim)))
        return hstack(views).tocsr()


class Gate:
    """The sparse gate of ``sparse_gate``: a logistic regression over the TF-IDF views alone, its own
    temperature, and when it answers without the sentence encoder: a calibrated confidence of at least
    ``threshold`` for a message at least ``coverage`` of whose character n-grams the vectorizer knows."""

    def __init__(
        self, logreg: Any, temperature: float, settings: tuple[float, float], features: _TwoViewFeatures
    ) -> None:
        self.logreg, self.temperature = logreg, temperature
        self.threshold, self.coverage = settings
        self.features = features
        self._scorer: _OneDocScorer | None = None

    def scorer(self) -> _OneDocScorer:
        if self._scorer is None:
            self._scorer = _OneDocScorer(self.features, self.logreg)
        return self._scorer

    def answer(self, doc: Doc, tfidf: Vectorised) -> Any:
        """The gate's (1, classes) log-probabilities for ``doc`` when the vectorizer knows enough of it and
        the gate's calibrated confidence reaches the threshold; None when the full model has to answer."""
        if tfidf.coverage < self.coverage:
            return None
        log_proba = self.scorer().log_proba(doc, tfidf)
        return log_proba if temper(log_proba, self.temperature).max() >= self.threshold else None


class Vectorised(NamedTuple):
    """One message in the TF-IDF views: (columns, weights) per view — (None, None) where it has no known
    n-gram — and the share of its character n-grams the char view's vocabulary holds."""

    views: list[tuple[Any, Any]]
    coverage: float


class _OneDocScorer:
    """The multinomial logistic regression's log-probabilities for one message, computed from the fitted
    vectorizers' vocabularies, idf weights and the coefficient rows of the n-grams the message has, without
    building sparse matrices: the same numbers as :meth:`_TwoViewFeatures.logreg_log_proba` (a test holds
    them equal) for about a third of the cost. Serving parses one message at a time; batches (training,
    evaluation) keep the sparse-matrix path."""

    def __init__(self, features: _TwoViewFeatures, logreg: Any) -> None:
        coef = np.asarray(logreg.coef_, dtype=np.float64)
        self.views = []
        start = 0
        for vectorizer in (features.word, features.char):
            size = len(vectorizer.vocabulary_)
            # (n-grams, classes), rows contiguous: a message's few n-grams are a cheap fancy index
            rows = np.ascontiguousarray(coef[:, start : start + size].T)
            self.views.append((vectorizer.build_analyzer(), vectorizer.vocabulary_, vectorizer.idf_, rows))
            start += size
        self.sublinear = (features.word.sublinear_tf, features.char.sublinear_tf)
        # the dense view's rows; a gate's coefficients stop at the TF-IDF views
        self.dense = np.ascontiguousarray(coef[:, start:].T) if coef.shape[1] > start else None
        self.intercept = np.asarray(logreg.intercept_, dtype=np.float64)
        self.zh_word_weight = getattr(features, "zh_word_weight", 1.0)

    @staticmethod
    def _tfidf(analyzer: Any, vocabulary: dict[str, int], idf: Any, text: str, sublinear: bool) -> Any:
        """(columns, weights, share of the text's n-grams in ``vocabulary``)."""
        grams = analyzer(text)
        # the lookups and the counting in C (map, Counter): 11 µs for a CLINC150 message's ~160 character
        # n-grams against a Python loop's 16. Columns in first-seen order, as the loop had them.
        counts = Counter(map(vocabulary.get, grams))
        counts.pop(None, None)
        if not counts:
            return None, None, 0.0
        columns = np.fromiter(counts, dtype=np.intp, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if sublinear:
            tf = np.log(tf) + 1.0
        weights = tf * idf[columns]
        return columns, weights / np.sqrt(weights @ weights), sum(counts.values()) / len(grams)

    def tfidf(self, doc: Doc) -> Vectorised:
        """The message in the TF-IDF views, the word view's weights scaled for Chinese. The same for every
        model of these features (the classifier's and its gate's), so a message falling through the gate
        is vectorised once."""
        word_text, char_text, _, chinese = doc
        texts, scales = (word_text, char_text), (self.zh_word_weight if chinese else 1.0, 1.0)
        found, coverages = [], []
        for (analyzer, vocabulary, idf, _), text, scale, sublinear in zip(
            self.views, texts, scales, self.sublinear, strict=True
        ):
            columns, weights, coverage = self._tfidf(analyzer, vocabulary, idf, text, sublinear)
            found.append((columns, None if columns is None else weights * scale))
            coverages.append(coverage)
        return Vectorised(found, coverages[1])  # views: (word, char)

    def log_proba(self, doc: Doc, tfidf: Vectorised | None = None) -> Any:
        """``doc``'s log-probabilities; ``tfidf``: its :meth:`tfidf`, when already computed."""
        vector = doc[2]
        scores = self.intercept.copy()
        for (_, _, _, rows), (columns, weights) in zip(
            self.views, (self.tfidf(doc) if tfidf is None else tfidf).views, strict=True
        ):
            if columns is not None:
                scores += weights @ rows[columns]
        if self.dense is not None and vector is not None:
            scores += np.asarray(vector, dtype=np.float64) @ self.dense
        return log_softmax(scores[np.newaxis, :])
