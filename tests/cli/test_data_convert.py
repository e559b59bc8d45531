import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

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
