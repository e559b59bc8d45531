import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.data_cmd import intent_name
from bot.nlu.training_data import load_training_data
from triagebot.cli import app

runner = CliRunner()


def test_clinc150_json(tmp_path: Path) -> None:
    source = tmp_path / "data_full.json"
    source.write_text(
        json.dumps(
            {
                "train": [["what's my balance", "balance"], ["transfer [money] now", "transfer"]],
                "val": [["balance please", "balance"]],
                "test": [["show balance", "balance"]],
                "oos_train": [["tell me a joke", "oos"]],
                "oos_val": [],
                "oos_test": [["play music", "oos"]],
            }
        ),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["data", "convert", str(source), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    train = load_training_data(tmp_path / "out" / "train.yml")
    assert [(e.text, e.intent) for e in train.examples] == [
        ("what's my balance", "balance"),
        ("transfer ［money］ now", "transfer"),
        ("tell me a joke", "out_of_scope"),
    ]
    assert [e.intent for e in load_training_data(tmp_path / "out" / "test.yml").examples] == [
        "balance",
        "out_of_scope",
    ]


def test_csv_and_jsonl(tmp_path: Path) -> None:
    csv_file = tmp_path / "d.csv"
    csv_file.write_text(
        'text,label\n发票查验失败,invoice_verification_failed\n"hi, there",greet\n', encoding="utf-8"
    )
    assert runner.invoke(app, ["data", "convert", str(csv_file), "--out", str(tmp_path / "c")]).exit_code == 0
    assert len(load_training_data(tmp_path / "c" / "all.yml").examples) == 2
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text(
        '{"split": "train", "text": "打电话给妈妈", "label": "telephone.DIAL"}\n\n'
        '{"split": "test", "text": "播放音乐", "intent": "music.PLAY"}\n',
        encoding="utf-8",
    )
    assert runner.invoke(app, ["data", "convert", str(jsonl), "--out", str(tmp_path / "j")]).exit_code == 0
    assert load_training_data(tmp_path / "j" / "train.yml").intents == ["telephone__DIAL"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", "{not json", "not valid JSON"),
        ("bad2.json", "[1, 2]", "not a CLINC150 file"),
        ("bad.csv", "text,label\nonly one column\n", "two columns"),
        ("bad.jsonl", '{"text": "no label"}\n', 'needs "text" and "label"'),
        ("bad2.jsonl", "garbage\n", "not valid JSON"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, name: str, content: str, message: str) -> None:
    source = tmp_path / name
    source.write_text(content, encoding="utf-8")
    result = runner.invoke(app, ["data", "convert", str(source), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert message in result.output


def test_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "convert", str(tmp_path / "nope.json"), "--out", str(tmp_path)])
    assert result.exit_code == 1 and "no such file" in result.output


@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("reverted_card_payment?", "reverted_card_payment"),  # BANKING77
        ("app.QUERY", "app__QUERY"),  # SMP2019
        ("card payment fee", "card_payment_fee"),
        ("top-up/failed", "top-up_failed"),
        ("24h_support", "intent_24h_support"),
        ("查询余额", ""),
        ("balance", "balance"),
    ],
)
def test_intent_name(label: str, name: str) -> None:
    assert intent_name(label) == name


def test_labels_are_renamed_to_names_eval_and_rasa_accept(tmp_path: Path) -> None:
    source = tmp_path / "banking77.csv"
    source.write_text(
        "text,label\n"
        "my card payment was reverted,reverted_card_payment?\n"
        "why was it reverted again,reverted_card_payment?\n"
        "reverted payment question,reverted_card_payment\n"  # the clean name exists: no merge
        "查一下余额,查询余额\n"
        "what is my balance,balance\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["data", "convert", str(source), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "renamed 2 labels" in result.output
    assert "'reverted_card_payment?' → reverted_card_payment_2" in result.output
    data = load_training_data(tmp_path / "out" / "all.yml")  # the loader triage eval uses: no refusal
    assert data.intents == ["balance", "intent_3", "reverted_card_payment", "reverted_card_payment_2"]
    renames = json.loads((tmp_path / "out" / "intent_renames.json").read_text(encoding="utf-8"))
    assert renames == {"reverted_card_payment?": "reverted_card_payment_2", "查询余额": "intent_3"}


def test_a_rename_is_the_same_in_every_split(tmp_path: Path) -> None:
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text(
        '{"split": "train", "text": "a", "label": "why?"}\n{"split": "test", "text": "b", "label": "why?"}\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["data", "convert", str(jsonl), "--out", str(tmp_path / "j")])
    assert result.exit_code == 0, result.output
    for split in ("train", "test"):
        assert load_training_data(tmp_path / "j" / f"{split}.yml").intents == ["why"]


def test_clean_labels_write_no_renames_file(tmp_path: Path) -> None:
    source = tmp_path / "d.csv"
    source.write_text("text,label\nhello,greet\n", encoding="utf-8")
    result = runner.invoke(app, ["data", "convert", str(source), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0 and "renamed" not in result.output
    assert not (tmp_path / "out" / "intent_renames.json").exists()
