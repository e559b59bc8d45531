import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import DATA_DIR, KB_DIR
from triagebot.cli import app

runner = CliRunner()


@pytest.fixture
def env(model_dir: Path) -> dict[str, str]:
    return {
        "TRIAGE_MODEL_DIR": str(model_dir.parent),
        "TRIAGE_DATA_DIR": str(DATA_DIR),
        "TRIAGE_KB_DIR": str(KB_DIR),
    }


def test_parse_prints_one_json_object_per_message(env: dict[str, str], tmp_path: Path) -> None:
    messages = tmp_path / "in.txt"
    messages.write_bytes(
        "转人工\n\xff\xfe garbage\n\n".encode("utf-8", "surrogateescape")
        if False
        else "转人工\n".encode() + b"\xff\xfe garbage\n\n"
    )
    result = runner.invoke(app, ["parse", "发票查验失败", "--input", str(messages)], env=env)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["intent"]["name"] for r in lines[:2]] == ["invoice_verification_failed", "request_human"]
    assert lines[2]["text"] == "\ufffd\ufffd garbage"
    assert lines[3]["intent"]["name"] == "nlu_fallback"


def test_parse_without_a_model_says_what_to_do(tmp_path: Path) -> None:
    result = runner.invoke(app, ["parse", "hi"], env={"TRIAGE_MODEL_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert "triage train" in result.output


def test_parse_needs_input(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["parse"], env=env)
    assert result.exit_code == 1 and "--input" in result.output


def _yaml(path: Path, intents: dict[str, list[str]]) -> Path:
    lines = ['version: "3.1"', "nlu:"]
    for intent, examples in intents.items():
        lines += [f"- intent: {intent}", "  examples: |", *(f"    - {e}" for e in examples)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_eval_reports_metrics_plot_and_warns_on_unknown_intents(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    train = _yaml(
        tmp_path / "train.yml",
        {
            "greet": ["hi", "hello", "hey there", "good morning", "你好", "早上好"],
            "goodbye": ["bye", "see you", "goodbye now", "再见", "拜拜", "回头见"],
            "thanks": ["thanks", "thank you", "many thanks", "谢谢", "多谢", "感谢"],
        },
    )
    test = _yaml(
        tmp_path / "test.yml",
        {
            "greet": ["hello there", "您好"],
            "goodbye": ["bye bye"],
            "thanks": ["thanks a lot"],
            "out_of_scope": ["what is the weather"],
            "teleport": ["beam me up"],
        },
    )
    report, plot = tmp_path / "report.json", tmp_path / "cm.png"
    result = runner.invoke(
        app,
        [
            "eval",
            "--train",
            str(train),
            "--test",
            str(test),
            "--val",
            str(test),
            "--config",
            str(DATA_DIR / "config.yml"),
            "--report",
            str(report),
            "--plot",
            str(plot),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text(encoding="utf-8"))
    for key in (
        "in_scope_accuracy",
        "oos_recall",
        "oos_precision",
        "accuracy",
        "macro_f1",
        "per_intent",
        "threshold",
        "train_seconds",
        "parse_ms_p50",
        "parse_ms_p99",
    ):
        assert key in data
    assert data["threshold_source"] == "validation"
    assert data["unknown_test_intents"] == ["teleport"]
    assert data["per_intent"]["teleport"]["recall"] == 0.0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("teleport" in r.message for r in caplog.records)


def test_eval_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n', encoding="utf-8")
    result = runner.invoke(app, ["eval", "--train", str(bad), "--test", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:3" in result.output and "no examples" in result.output
    result = runner.invoke(app, ["eval", "--train", str(DATA_DIR)])
    assert result.exit_code == 1 and "--cv" in result.output


def test_train_skips_unchanged_data(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["train"], env=env)
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_kb_search_json_and_input(env: dict[str, str], tmp_path: Path) -> None:
    result = runner.invoke(app, ["kb", "search", "查验失败", "提示不一致", "--json", "--top", "2"], env=env)
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert len(hits) == 2 and hits[0]["id"] == "zh-verify-info-mismatch"
    assert set(hits[0]) >= {"id", "title", "lang", "intents", "score", "snippet"}
    queries = tmp_path / "q.txt"
    queries.write_text("password reset link expired\n?!\n", encoding="utf-8")
    result = runner.invoke(app, ["kb", "search", "--input", str(queries)], env=env)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0][0]["lang"] == "en" and rows[1] == []
    result = runner.invoke(app, ["kb", "search", "x", "--lang", "fr"], env=env)
    assert result.exit_code == 1 and "--lang" in result.output


def test_kb_eval_report_keys(env: dict[str, str], tmp_path: Path) -> None:
    report = tmp_path / "kb.json"
    result = runner.invoke(app, ["kb", "eval", "--report", str(report)], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text(encoding="utf-8"))
    for lang in ("zh", "en"):
        assert set(data["by_language"][lang]) >= {
            "recall_at_1",
            "recall_at_3",
            "mrr",
            "no_answer_precision",
            "no_answer_recall",
        }
