"""Intent classification with scikit-learn: TF-IDF word n-grams over lemmas plus character n-grams over
the normalised text, into a multinomial logistic regression (optionally averaged with a one-hidden-layer
MLP). Logistic regression's probabilities are well enough calibrated for a single fallback threshold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from bot.errors import ConfigError, DataError
from bot.nlu.registry import Context
from bot.nlu.state import ParseState
from bot.nlu.training_data import OUT_OF_SCOPE, TrainingData

MODELS = ("logreg", "mlp", "ensemble")


def _word_doc(state: ParseState) -> str:
    return " ".join(state.lemmas)


class TfidfIntentClassifier:
    name: ClassVar[str] = "tfidf_classifier"
    trainable: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        "word_ngrams": [1, 2],
        "char_ngrams": [1, 4],
        "char_min_df": 1,
        "model": "logreg",
        "C": 20.0,
        "max_iter": 3000,
        "mlp_hidden": 512,
        "mlp_epochs": 30,
        "random_state": 0,
        # Train on out_of_scope examples as a class of their own; a message classified as out_of_scope
        # falls back. With false, out-of-scope is detected by the confidence threshold alone.
        "out_of_scope_class": True,
    }

    def __init__(self, config: dict[str, Any], context: Context, fitted: Any = None) -> None:
        if config["model"] not in MODELS:
            raise ConfigError(f"tfidf_classifier model must be one of {MODELS}, got {config['model']!r}")
        self.config = config
        self.fitted = fitted  # (features, [estimators], classes)

    @staticmethod
    def _docs(states: list[ParseState]) -> list[tuple[str, str]]:
        return [(_word_doc(s), s.normalized_text) for s in states]

    def train(self, data: TrainingData, states: list[ParseState]) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.neural_network import MLPClassifier

        labels = [ex.intent for ex in data.examples]
        keep_oos = self.config["out_of_scope_class"]
        pairs = [(s, y) for s, y in zip(states, labels, strict=True) if keep_oos or y != OUT_OF_SCOPE]
        if len({y for _, y in pairs}) < 2:
            raise DataError(
                "<training data>", None, "need examples of at least two intents to train a classifier"
            )
        features = _TwoViewFeatures(self.config)
        x = features.fit_transform(self._docs([s for s, _ in pairs]))
        y = [lbl for _, lbl in pairs]
        estimators = []
        if self.config["model"] in ("logreg", "ensemble"):
            estimators.append(
                LogisticRegression(C=self.config["C"], max_iter=self.config["max_iter"]).fit(x, y)
            )
        if self.config["model"] in ("mlp", "ensemble"):
            mlp = MLPClassifier(
                hidden_layer_sizes=(self.config["mlp_hidden"],),
                max_iter=self.config["mlp_epochs"],
                random_state=self.config["random_state"],
            )
            estimators.append(mlp.fit(x, y))
        self.fitted = (features, estimators, [str(c) for c in estimators[0].classes_])

    def predict_proba(self, states: list[ParseState]) -> tuple[list[str], Any]:
        """Class names and an (n, classes) probability matrix."""
        features, estimators, classes = self.fitted
        x = features.transform(self._docs(states))
        proba = sum(e.predict_proba(x) for e in estimators) / len(estimators)
        return classes, proba

    def process(self, state: ParseState) -> None:
        if self.fitted is None or not state.normalized_text.strip():
            state.ranking = []
            return
        classes, proba = self.predict_proba([state])
        row = proba[0]
        order = row.argsort()[::-1]
        state.ranking = [(classes[i], float(row[i])) for i in order]

    def persist(self, directory: Path) -> None:
        import joblib

        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.fitted, directory / "classifier.joblib", compress=3)

    @classmethod
    def load(cls, config: dict[str, Any], directory: Path, context: Context) -> TfidfIntentClassifier:
        import joblib

        return cls(config, context, joblib.load(directory / "classifier.joblib"))


class _TwoViewFeatures:
    """TF-IDF over the word view (lemmas) and the character view (normalised text) of each document."""

    def __init__(self, config: dict[str, Any]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.word = TfidfVectorizer(
            ngram_range=tuple(config["word_ngrams"]), sublinear_tf=True, token_pattern=r"\S+", lowercase=False
        )
        self.char = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=tuple(config["char_ngrams"]),
            sublinear_tf=True,
            min_df=config["char_min_df"],
            lowercase=False,
        )

    def fit_transform(self, docs: list[tuple[str, str]]) -> Any:
        from scipy.sparse import hstack

        return hstack(
            [self.word.fit_transform([w for w, _ in docs]), self.char.fit_transform([c for _, c in docs])]
        ).tocsr()

    def transform(self, docs: list[tuple[str, str]]) -> Any:
        from scipy.sparse import hstack

        return hstack(
            [self.word.transform([w for w, _ in docs]), self.char.transform([c for _, c in docs])]
        ).tocsr()
