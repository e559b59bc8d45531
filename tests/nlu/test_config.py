from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.nlu.config import PipelineConfig, fingerprint
from tests.conftest import DATA_DIR


def test_repository_config_resolves_defaults() -> None:
    config = PipelineConfig.from_file(DATA_DIR / "config.yml")
    assert [name for name, _ in config.steps][:2] == ["normalizer", "tokenizer"]
    assert config.param("tfidf_classifier", "model") == "logreg"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"pipeline": [{"name": "spacy_bert"}]},
            "unknown pipeline component 'spacy_bert'; known components:",
        ),
        ({"pipeline": [{"name": "fallback", "treshold": 0.5}]}, "has no parameter(s) ['treshold']"),
        ({"pipeline": []}, "non-empty 'pipeline:'"),
        ({"pipeline": [{"threshold": 1}]}, "needs a 'name'"),
        (["not", "a", "mapping"], "non-empty 'pipeline:'"),
    ],
)
def test_bad_config_says_how_to_fix_it(raw: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_dict(raw)
    assert message in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no pipeline config"):
        PipelineConfig.from_file(tmp_path / "config.yml")


def test_fingerprint_changes_with_data_and_config(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text('version: "3.1"\nnlu: []\n', encoding="utf-8")
    config = PipelineConfig.from_dict({"pipeline": [{"name": "normalizer"}]})
    first = fingerprint([tmp_path], config)
    assert fingerprint([tmp_path], config) == first
    (tmp_path / "a.yml").write_text('version: "3.1"\nnlu: [] # changed\n', encoding="utf-8")
    second = fingerprint([tmp_path], config)
    assert second != first
    other = PipelineConfig.from_dict({"pipeline": [{"name": "normalizer", "max_chars": 10}]})
    assert fingerprint([tmp_path], other) != second


def test_editing_an_evaluation_set_does_not_retrain(tmp_path: Path) -> None:
    """nlu_data/eval/ holds labelled sets the model never trains on: editing them must not make the model
    out of date (and retrain on the next `make run`)."""
    (tmp_path / "a.yml").write_text('version: "3.1"\nnlu: []\n', encoding="utf-8")
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "dialogue.yml").write_text("conversations: []\n", encoding="utf-8")
    config = PipelineConfig.from_dict({"pipeline": [{"name": "normalizer"}]})
    first = fingerprint([tmp_path], config)
    (tmp_path / "eval" / "dialogue.yml").write_text("conversations: [] # a new row\n", encoding="utf-8")
    assert fingerprint([tmp_path], config) == first
