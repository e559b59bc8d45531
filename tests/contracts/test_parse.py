"""The parse contract (bot/contracts/parse.py): a strict, lossless decoding of the pipeline's dict."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest

from bot.contracts.parse import Entity, Intent, Parse
from bot.errors import InputError
from bot.nlu.pipeline import NLUPipeline
from bot.vocabulary import Script, Severity
from tests.conftest import TODAY

MESSAGES = [
    "发票查验失败，提示不一致",  # zh
    "發票號碼２４４４２００００００１２３４５６７８９查驗失敗",  # zh-Hant, full-width digits
    "how do I reset my password",  # en
    "OCR 识别不出来，error code E1024",  # mixed
    "全公司都登不上了，发票号码24442000000123456789，月底要结账！",  # urgent, an entity
    "昨天报销了¥1,280.50，税号91350100M000100Y43，到现在还没到账",  # amount (an object value), tax id
    "查询工单 T-20261123-0001，联系我 13800138000 或 a@b.cn",  # ticket, phone, email
    "太垃圾了！！！一直报错，气死了",  # negative sentiment
    "",  # nothing to go on
]


def old_parse_summary(parse: dict[str, Any]) -> dict[str, Any]:
    """bot/engine.py's ``_parse_summary`` before the typed parse: the API's ``parse`` field."""
    return {
        "intent": parse["intent"]["name"],
        "confidence": parse["intent"]["confidence"],
        "severity": parse["severity"],
        "sentiment": parse["sentiment"],
        "language": parse["language"],
        "ambiguous": parse["ambiguous"],
        "entities": [{k: e[k] for k in ("entity", "start", "end", "value")} for e in parse["entities"]],
    }


@pytest.fixture(scope="module")
def parsed(nlu: NLUPipeline) -> dict[str, dict[str, Any]]:
    return {text: nlu.parse(text, TODAY) for text in MESSAGES}


@pytest.mark.parametrize("text", MESSAGES)
def test_round_trip_is_exact(parsed: dict[str, dict[str, Any]], text: str) -> None:
    raw = parsed[text]
    out = Parse.from_rasa(raw).to_rasa()
    assert out == raw
    assert list(out) == list(raw)  # same key order, so the JSON reads the same
    assert json.dumps(out, ensure_ascii=False) == json.dumps(raw, ensure_ascii=False)


@pytest.mark.parametrize("text", MESSAGES)
def test_summary_is_the_api_parse_field(parsed: dict[str, dict[str, Any]], text: str) -> None:
    raw = parsed[text]
    assert Parse.from_rasa(raw).summary() == old_parse_summary(raw)


def test_the_table_covers_every_script_and_some_entities(parsed: dict[str, dict[str, Any]]) -> None:
    parses = [Parse.from_rasa(raw) for raw in parsed.values()]
    assert {p.script for p in parses} == set(Script)
    assert {p.language for p in parses} >= {"zh", "zh-Hant", "en", "mixed"}
    kinds = {e.entity for p in parses for e in p.entities}
    assert kinds >= {"invoice_number", "amount", "ticket_id", "phone", "email"}
    assert Severity.URGENT in {p.severity.level for p in parses}


def test_fields_are_typed(nlu: NLUPipeline) -> None:
    p = nlu.parse_typed("昨天报销了¥1,280.50，到现在还没到账", TODAY)
    assert isinstance(p.intent, Intent)
    assert isinstance(p.severity.level, Severity)
    assert isinstance(p.script, Script)
    assert isinstance(p.entities, tuple) and isinstance(p.intent_ranking, tuple)
    assert isinstance(p.severity.reasons, tuple) and isinstance(p.sentiment.reasons, tuple)
    amount = next(e for e in p.entities if e.entity == "amount")
    assert amount.value == {"amount": 1280.5, "currency": "CNY"}
    with pytest.raises(TypeError, match="frozen"):
        amount.value["amount"] = 1  # the value is read-only too
    assert json.loads(json.dumps(amount.value)) == {"amount": 1280.5, "currency": "CNY"}
    assert copy.deepcopy(p) == p


def test_frozen(nlu: NLUPipeline) -> None:
    p = nlu.parse_typed("发票查验失败", TODAY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.text = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.intent.name = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.severity.level = Severity.URGENT  # type: ignore[misc]


def test_with_intent_forces_the_intent_and_clears_ambiguity() -> None:
    p = Parse("/export_failed", Intent("nlu_fallback", 0.1), ambiguous=True)
    forced = p.with_intent("export_failed", 1.0)
    assert (forced.intent, forced.ambiguous) == (Intent("export_failed", 1.0), False)
    assert forced.to_rasa()["intent"] == {"name": "export_failed", "confidence": 1.0}
    assert (p.intent.name, p.ambiguous) == ("nlu_fallback", True)  # the original is untouched


def test_a_rasa_entity_without_the_optional_keys() -> None:
    raw = {"entity": "email", "start": 5, "end": 10, "value": "a@b.c"}
    entity = Entity.from_rasa(raw, "entities[0]", "mail a@b.c please")
    assert (entity.text, entity.extractor, entity.confidence_entity) == ("a@b.c", None, None)
    assert entity.to_rasa() == {**raw, "text": "a@b.c"}


@pytest.fixture(scope="module")
def sample(nlu: NLUPipeline) -> dict[str, Any]:
    raw = nlu.parse("全公司都登不上了，发票号码24442000000123456789", TODAY)
    assert raw["entities"], "the sample needs an entity"
    return raw


def _without(raw: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    target: Any = out
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return out


def _with(raw: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    target: Any = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (("text",), "'text' is missing"),
        (("intent",), "'intent' is missing"),
        (("intent", "name"), "'intent.name' is missing"),
        (("intent", "confidence"), "'intent.confidence' is missing"),
        (("entities",), "'entities' is missing"),
        (("entities", 0, "start"), "'entities[0].start' is missing"),
        (("entities", 0, "value"), "'entities[0].value' is missing"),
        (("intent_ranking",), "'intent_ranking' is missing"),
        (("intent_ranking", 3, "name"), "'intent_ranking[3].name' is missing"),
        (("language",), "'language' is missing"),
        (("script",), "'script' is missing"),
        (("severity",), "'severity' is missing"),
        (("severity", "reasons"), "'severity.reasons' is missing"),
        (("sentiment", "score"), "'sentiment.score' is missing"),
        (("ambiguous",), "'ambiguous' is missing"),
        (("truncated",), "'truncated' is missing"),
    ],
)
def test_a_missing_field_is_named(sample: dict[str, Any], path: tuple[str | int, ...], name: str) -> None:
    with pytest.raises(InputError, match=name.replace("[", r"\[").replace("]", r"\]")):
        Parse.from_rasa(_without(sample, path))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("text",), None, "'text' must be a string, got NoneType"),
        (("intent",), "greet", "'intent' must be an object, got str"),
        (("intent", "confidence"), "0.9", "'intent.confidence' must be a number, got str"),
        (("intent", "confidence"), True, "'intent.confidence' must be a number, got bool"),
        (("entities",), {}, "'entities' must be a list, got dict"),
        (("entities", 0), "x", r"'entities\[0\]' must be an object, got str"),
        (("entities", 0, "end"), 3.0, r"'entities\[0\].end' must be an integer, got float"),
        (("entities", 0, "text"), 7, r"'entities\[0\].text' must be a string, got int"),
        (("script",), "Cyrl", "'script' must be one of Hans, Hant, Latn, got 'Cyrl'"),
        (("severity", "level"), "critical", "'severity.level' must be one of urgent, important, normal"),
        (("severity", "reasons"), ["a", 1], r"'severity.reasons\[1\]' must be a string, got int"),
        (("sentiment",), [], "'sentiment' must be an object, got list"),
        (("ambiguous",), 0, "'ambiguous' must be true or false, got int"),
    ],
)
def test_a_mistyped_field_is_named(
    sample: dict[str, Any], path: tuple[str | int, ...], value: Any, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        Parse.from_rasa(_with(sample, path, value))


def test_not_an_object() -> None:
    with pytest.raises(InputError, match="must be an object, got list"):
        Parse.from_rasa([])  # type: ignore[arg-type]
