"""``class_weight: balanced``: an intent with a handful of examples beside one with forty is not drowned.

The defect (SMP2019, docs/rasa.md): "下载汉化软件" (app.DOWNLOAD, one training message) and "帮我转发邮件"
(email.FORWARD, four) went to the big neighbouring intents, and Rasa's LogisticRegressionClassifier, which
weighs intents equally, beat the native pipeline on macro F1."""

from __future__ import annotations

from typing import Any

import pytest

from bot.errors import ConfigError
from bot.nlu import registry
from bot.nlu.config import PipelineConfig
from bot.nlu.pipeline import NLUPipeline
from bot.nlu.registry import Context
from bot.nlu.training_data import Example, TrainingData
from tests.conftest import DATA_DIR, TODAY, tfidf_classifier

APPS = "微信 支付宝 抖音 淘宝 京东 美团 百度 高德地图 网易云音乐 哔哩哔哩 知乎 微博 拼多多 饿了么 携程 滴滴 钉钉 企业微信 今日头条 快手"
DATA = TrainingData(
    [Example(f"打开{app}", "app_launch") for app in APPS.split()]
    + [Example(f"帮我打开{app}", "app_launch") for app in APPS.split()]
    + [Example("下载汉化软件", "app_download"), Example("我要下载一个游戏", "app_download")]
)


def _train(class_weight: str | None) -> NLUPipeline:
    steps: list[dict[str, Any]] = [
        {"name": "normalizer"},
        {"name": "tokenizer"},
        {"name": "tfidf_classifier", "calibration": "none", "class_weight": class_weight},
        {"name": "fallback", "threshold": 0.0},
    ]
    return NLUPipeline.train(DATA, PipelineConfig.from_dict({"pipeline": steps}), Context(DATA_DIR))


def test_a_rare_intent_is_not_drowned_by_a_big_one() -> None:
    plain, balanced = _train(None), _train("balanced")
    # "下载" (download) is the rare intent's word; the app's name is the big intent's
    assert plain.process("我要下载淘宝", TODAY).ranking[0][0] == "app_launch"
    assert balanced.process("我要下载淘宝", TODAY).ranking[0][0] == "app_download"
    # the big intent keeps its own messages
    for text in ("打开淘宝", "帮我打开微信"):
        assert balanced.process(text, TODAY).ranking[0][0] == "app_launch"
    assert balanced.classifier().fitted[1][0].class_weight == "balanced"
    assert plain.classifier().fitted[1][0].class_weight is None


def test_nlu_data_weighs_every_message_the_same() -> None:
    """Balanced weights cost nlu_data's out_of_scope recall (docs/nlu.md, "Rare intents"); only SMP2019's
    benchmark config takes them."""
    assert registry.resolve_config("tfidf_classifier", {})["class_weight"] is None
    assert PipelineConfig.from_file(DATA_DIR / "config.yml").param("tfidf_classifier", "class_weight") is None
    smp2019 = PipelineConfig.from_file(DATA_DIR.parent / "benchmarks" / "configs" / "smp2019.yml")
    assert smp2019.param("tfidf_classifier", "class_weight") == "balanced"


@pytest.mark.parametrize("value", ["Balanced", "auto", 1, True, {"a": 1.0}])
def test_bad_class_weight(value: Any) -> None:
    with pytest.raises(ConfigError, match="class_weight must be balanced or null"):
        tfidf_classifier({"class_weight": value})


@pytest.mark.parametrize("model", ["mlp", "ensemble"])
def test_class_weight_needs_the_logistic_regression(model: str) -> None:
    """scikit-learn's MLPClassifier takes no class weights: the setting would be silently half-applied."""
    with pytest.raises(ConfigError, match="use model: logreg"):
        tfidf_classifier({"class_weight": "balanced", "model": model})
