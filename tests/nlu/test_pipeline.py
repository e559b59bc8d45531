import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.errors import InputError, ModelNotFoundError
from bot.nlu.config import PipelineConfig
from bot.nlu.pipeline import META_FILE, NLUPipeline, stored_fingerprint
from bot.nlu.state import FALLBACK_INTENT, RANKING_LENGTH, ParseState
from tests.conftest import DATA_DIR, TODAY


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("发票查验失败，提示不一致", "invoice_verification_failed"),
        ("發票查驗失敗怎麼辦", "invoice_verification_failed"),
        ("拍的发票识别不出来金额", "invoice_recognition_failed"),
        ("忘记密码了怎么重置", "password_reset"),
        ("转人工", "request_human"),
        ("你好", "greet"),
        ("谢谢", "thanks"),
        ("系统打不开了，全公司都用不了", "system_outage"),
        ("how do I reset my password", "password_reset"),
        ("export to excel keeps timing out", "export_failed"),
        ("the invoice says it was already reimbursed by someone else", "invoice_duplicate"),
        ("I want to talk to a real person", "request_human"),
        ("OCR 识别不出来", "invoice_recognition_failed"),
    ],
)
def test_parse_intents_in_both_languages(nlu: NLUPipeline, text: str, intent: str) -> None:
    assert nlu.parse(text, TODAY)["intent"]["name"] == intent


def test_parse_has_rasa_shape_and_more(nlu: NLUPipeline) -> None:
    result = nlu.parse("全公司都登不上了，发票号码24442000000123456789，月底要结账！", TODAY)
    assert set(result) >= {
        "text",
        "intent",
        "entities",
        "intent_ranking",
        "language",
        "severity",
        "sentiment",
        "ambiguous",
    }
    assert set(result["intent"]) == {"name", "confidence"}
    assert len(result["intent_ranking"]) == 10
    confidences = [r["confidence"] for r in result["intent_ranking"]]
    assert confidences == sorted(confidences, reverse=True)
    assert result["severity"]["level"] == "urgent"
    assert any(r.startswith("scope:") for r in result["severity"]["reasons"])
    entity = result["entities"][0]
    assert set(entity) >= {"entity", "start", "end", "value", "extractor", "confidence_entity"}
    assert result["text"][entity["start"] : entity["end"]] == "24442000000123456789"
    json.dumps(result)  # serialisable as is


def test_the_ranking_is_the_best_of_all_intents_best_first(nlu: NLUPipeline) -> None:
    """Only what the parse returns is sorted and built: the RANKING_LENGTH best of every intent."""
    classifier = nlu.classifier()
    classes = classifier.fitted[2]
    assert len(classes) > RANKING_LENGTH
    row = np.random.default_rng(7).dirichlet(np.ones(len(classes)))
    state = ParseState(text="发票查验失败", today=TODAY)
    classifier._rank(state, row, np.log(row)[None])
    best = sorted(zip(classes, row.tolist(), strict=True), key=lambda pair: -pair[1])[:RANKING_LENGTH]
    assert state.ranking == best
    assert state.raw_confidence == pytest.approx(best[0][1])
    tied = np.full(len(classes), 0.5 / (len(classes) - 3))
    tied[[9, 4, 2]] = 0.5 / 3  # three best, equal: in the classes' order, as the batch path's argmax
    classifier._rank(state, tied, np.log(tied)[None])
    assert [name for name, _ in state.ranking[:3]] == [classes[2], classes[4], classes[9]]
    assert len(state.ranking) == RANKING_LENGTH


def test_traditional_chinese_keeps_the_original_text_and_offsets(nlu: NLUPipeline) -> None:
    text = "發票號碼２４４４２００００００１２３４５６７８９查驗失敗"
    result = nlu.parse(text, TODAY)
    assert result["text"] == text
    assert result["language"] == "zh-Hant"
    entity = result["entities"][0]
    assert text[entity["start"] : entity["end"]] == "２４４４２００００００１２３４５６７８９"


def test_out_of_scope_falls_back_with_ranking_kept(nlu: NLUPipeline) -> None:
    result = nlu.parse("明天北京天气怎么样", TODAY)
    assert result["intent"]["name"] == FALLBACK_INTENT
    assert result["intent_ranking"]


def test_sentiment_and_severity_on_a_complaint(nlu: NLUPipeline) -> None:
    result = nlu.parse("你们这什么破系统，太垃圾了！！！", TODAY)
    assert result["sentiment"]["label"] == "negative"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "😀😀😀",
        "\x00\x01\x02\ufffd\ufffd",
        "?!。，",
        "a" * 100_000,
        "发票查验失败" * 20_000,
        "\ud800 lone surrogate",
    ],
)
def test_bad_input_gets_a_clean_result(nlu: NLUPipeline, text: str) -> None:
    result = nlu.parse(text, TODAY)
    assert result["text"] == text
    assert 0.0 <= result["intent"]["confidence"] <= 1.0
    if not text.strip():
        assert result["intent"]["name"] == FALLBACK_INTENT


def test_long_text_is_truncated_for_understanding(nlu: NLUPipeline) -> None:
    assert nlu.parse("发票查验失败" * 20_000, TODAY)["truncated"] is True
    assert nlu.parse("发票查验失败", TODAY)["truncated"] is False


def test_non_string_is_an_input_error(nlu: NLUPipeline) -> None:
    with pytest.raises(InputError):
        nlu.parse(b"bytes")  # type: ignore[arg-type]


def test_ambiguity_flag(nlu: NLUPipeline) -> None:
    # vague one- to three-word messages (the candidates test_conversations clicks through, and more): each is
    # flagged exactly when its top two intents are closer than the config's ambiguity_threshold, and the
    # model trained from nlu_data flags some of them (how many moves with the data and the solver: a bare
    # topic word the flag misses is still clarified by the policy's bare_topic rule, tests/policy)
    texts = ["发票", "invoice", "报销", "账号", "电子发票", "发票怎么办", "发票有问题", "invoice problem"]
    threshold = PipelineConfig.from_file(DATA_DIR / "config.yml").param("fallback", "ambiguity_threshold")
    results = [nlu.parse(t, TODAY) for t in texts]
    for r in results:
        ranking = r["intent_ranking"]
        gap = ranking[0]["confidence"] - ranking[1]["confidence"]
        assert r["ambiguous"] is (gap < threshold)
    assert any(r["ambiguous"] for r in results)


def test_unchanged_data_is_not_retrained(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "nlu"
    shutil.copytree(model_dir, copy)
    _, trained = NLUPipeline.load_or_train(DATA_DIR, copy)
    assert trained is False
    assert stored_fingerprint(copy) == stored_fingerprint(model_dir)


def test_changed_data_retrains(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("config.yml", "jieba_userdict.txt", "severity.yml", "sentiment.yml"):
        shutil.copy(DATA_DIR / name, data / name)
    nlu_file = data / "nlu.yml"
    nlu_file.write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n    - 你好\n'
        "- intent: goodbye\n  examples: |\n    - bye\n    - 再见\n",
        encoding="utf-8",
    )
    out = tmp_path / "model"
    first, trained = NLUPipeline.load_or_train(data, out)
    assert trained and first.intents == ["goodbye", "greet"]
    _, trained = NLUPipeline.load_or_train(data, out)
    assert not trained
    nlu_file.write_text(
        nlu_file.read_text(encoding="utf-8") + "- intent: thanks\n  examples: |\n    - thx\n",
        encoding="utf-8",
    )
    second, trained = NLUPipeline.load_or_train(data, out)
    assert trained and second.intents == ["goodbye", "greet", "thanks"]
    reloaded = NLUPipeline.load(out)
    assert reloaded.parse("thx", TODAY)["intent_ranking"][0]["name"] == "thanks"
    assert not list(tmp_path.glob(".model-*")), "no temporary model folders are left behind"


def test_missing_model_says_how_to_train(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="triage train"):
        NLUPipeline.load(tmp_path / "nowhere")
    assert META_FILE == "model.json"
