"""``triage eval --dialogue``: the strict loader of labelled sets, the classification of the engine's
responses, and a tiny set run through the real engine on a real Redis."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from typer.testing import CliRunner

from bot.dialogue.outcome import classify
from bot.dialogue.report import score_set
from bot.dialogue.runner import EXTRA_INTENTS, eval_services, run_sets
from bot.dialogue.sets import SetErrors, load_set
from bot.kb.search import KnowledgeBase
from bot.nlu.normalize import normalize
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from tests.conftest import DATA_DIR, KB_DIR
from triagebot.cli import app

HEAD = 'version: "1"\nconversations:\n'
# Each turn's label is what the policy does deterministically: button payloads, an explicit request for a
# person, and an unmistakable KB question — so the test checks the runner, not the model.
TINY = (
    HEAD
    + """\
  - id: verify-then-buttons
    script: zh
    tags: [context]
    turns:
      - say: 发票查验失败，提示查验结果不一致
        expect: answer
        intent: invoice_verification_failed
      - say: /not_helpful
        expect: offer_human
      - say: /request_human
        expect: handoff
        intent: invoice_verification_failed
  - id: helpful
    script: en
    turns:
      - say: /invoice_upload_failed
        expect: [clarify, answer]
        intent: invoice_upload_failed
      - say: /helpful
        expect: chitchat
  - id: human
    script: zh
    say: 转人工
    expect: answer
"""
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "set.yml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("  - id: a\n    script: zh\n    say: 发票\n    expect: maybe\n", 6, "expect 'maybe' is not one of"),
        ("  - id: a\n    script: klingon\n    say: 发票\n    expect: answer\n", 4, "script 'klingon'"),
        ("  - id: a\n    script: zh\n    expect: answer\n", 3, "missing 'say'"),
        ("  - id: a\n    script: en\n    say: 发票\n    expect: answer\n", 3, "has Chinese characters"),
        (
            "  - id: a\n    script: zh\n    say: 发票\n    expect: answer\n    intent: teleport\n",
            7,
            "teleport",
        ),
        ("  - id: a\n    script: zh\n    say: 发票\n    expect: answer\n    sevrity: urgent\n", 7, "sevrity"),
        ("  - id: a\n    script: zh\n    turns: []\n", 5, "non-empty list"),
        ("  - id: a\n    script: zh\n    say: 发票\n    expect: [answer, maybe]\n", 6, "'maybe' is not"),
        ("  - id: a\n    script: zh\n    say: [发票]\n    expect: answer\n", 5, "'say' must be a string"),
        (
            "  - id: a\n    script: zh\n    say: 你好\n    expect: chitchat\n"
            "  - id: a\n    script: zh\n    say: 在吗\n    expect: chitchat\n",
            7,
            "duplicate id 'a' (first at line 3)",
        ),
    ],
)
def test_loader_rejects_a_malformed_set_with_file_and_line(
    tmp_path: Path, body: str, line: int, reason: str
) -> None:
    path = _write(tmp_path, HEAD + body)
    with pytest.raises(SetErrors) as caught:
        load_set(path, ["invoice_archive", *EXTRA_INTENTS])
    assert any(e.line == line and reason in e.reason for e in caught.value.errors), str(caught.value)
    assert f"{path}:{line}" in str(caught.value)


def test_loader_reports_every_problem_at_once_and_refuses_training_data(tmp_path: Path) -> None:
    body = "  - id: A\n    script: zh\n    say: 发票\n    expect: answer\n  - script: en\n    expect: nope\n"
    path = _write(tmp_path, HEAD + body + "nlu: []\n")
    with pytest.raises(SetErrors) as caught:
        load_set(path)
    reasons = [e.reason for e in caught.value.errors]
    assert len(reasons) >= 4, reasons
    assert any("'nlu' key" in r for r in reasons)
    assert "problem(s) in the labelled set" in str(caught.value)


def test_the_repository_sets_load_and_stay_out_of_training() -> None:
    from bot.nlu.training_data import load_training_data

    data = load_training_data(DATA_DIR)
    known = [*data.intents, *EXTRA_INTENTS]
    dialogue = load_set(DATA_DIR / "eval" / "dialogue.yml", known)
    heldout = load_set(DATA_DIR / "eval" / "heldout.yml", known)
    assert len(dialogue.conversations) >= 150 and heldout.turns >= 120
    assert {c.script for c in dialogue.conversations} == {"zh", "zh-Hant", "en", "mixed"}
    assert not any(ex.source.startswith(str(DATA_DIR / "eval")) for ex in data.examples)

    # compared as the classifier reads text: Simplified, lower case, without punctuation or spaces
    def key(text: str) -> str:
        return re.sub(r"[\W_]+", "", normalize(text).text.lower())

    training = {key(ex.text) for ex in data.examples}
    leaked = [t.say for c in heldout.conversations for t in c.turns if key(t.say) in training]
    assert leaked == []


def _reply(text: str = "…", *payloads: str) -> dict[str, Any]:
    return {"text": text, "buttons": [{"title": p, "payload": p} for p in payloads]}


@pytest.mark.parametrize(
    ("response", "event", "decision"),
    [
        ({"replies": [_reply("x", "/helpful", "/not_helpful")], "state": "bot"}, None, "answer"),
        ({"replies": [_reply("x", "/request_human", "/no_human")], "state": "bot"}, None, "offer_human"),
        ({"replies": [_reply("x", "/invoice_archive", "/invoice_duplicate")]}, None, "clarify"),
        ({"replies": [_reply()], "handoff": {"intent": "login_failed"}, "state": "queued"}, None, "handoff"),
        ({"replies": [_reply()], "state": "waiting"}, None, "handoff"),
        ({"replies": [_reply()], "state": "bot"}, {"decision": "rephrase"}, "rephrase"),
        ({"replies": [_reply()], "state": "bot"}, {"decision": "ticket_status"}, "answer"),
        ({"replies": [_reply()], "state": "bot"}, {"decision": "reply"}, "chitchat"),
        ({"replies": [_reply()], "state": "bot"}, None, "chitchat"),
    ],
)
def test_classify_reads_the_response_as_a_user_sees_it(
    response: dict[str, Any], event: dict[str, Any] | None, decision: str
) -> None:
    response = {"parse": {"intent": "greet", "severity": {"level": "normal"}}, **response}
    assert classify(response, event).decision == decision


def test_classify_takes_the_card_intent_and_severity_of_a_handoff() -> None:
    response = {
        "replies": [],
        "state": "queued",
        "handoff": {"intent": "invoice_upload_failed", "severity": "urgent"},
        "parse": {"intent": "request_human", "severity": {"level": "normal"}},
    }
    outcome = classify(response, {"decision": "handoff", "reasons": ["rule:human_request", "keyword:x"]})
    assert (outcome.intent, outcome.severity, outcome.engine_decision) == (
        "invoice_upload_failed",
        "urgent",
        "handoff rule:human_request",
    )


async def test_runner_scores_a_tiny_set_through_the_engine(
    tmp_path: Path, settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase
) -> None:
    eval_set = load_set(_write(tmp_path, TINY), [*nlu.intents, *EXTRA_INTENTS])
    seen: list[str] = []
    async with eval_services(settings, nlu, knowledge_base) as services:
        prefix = services.settings.redis_prefix
        assert prefix.startswith(settings.redis_prefix) and prefix != settings.redis_prefix
        results = await run_sets(services, [eval_set], seen.append)
    assert seen == ["set:verify-then-buttons", "set:helpful", "set:human"]
    assert [r.outcome.decision for r in results["set"]] == [
        "answer",
        "offer_human",
        "handoff",
        "answer",
        "chitchat",
        "handoff",
    ]
    report = score_set(results["set"])
    assert (report["conversations"], report["turns"], report["correct"]) == (3, 6, 5)
    assert report["by_script"]["zh"] == {"turns": 4, "correct": 3, "accuracy": 75.0}
    assert report["confusion"]["answer"] == {"answer": 2, "handoff": 1}
    assert report["by_expected"]["handoff"] == {"turns": 1, "correct": 1, "recall": 100.0, "precision": 50.0}
    assert report["intent"] == {"turns": 3, "correct": 3, "accuracy": 100.0}
    assert report["by_tag"]["context"]["accuracy"] == 100.0
    (miss,) = report["misses"]
    assert miss["id"] == "human" and miss["expected"] == "answer" and miss["observed"] == "handoff"
    assert miss["line"] == 25 and "rule:human_request" in miss["engine"]
    # Every key the run wrote is gone.
    client = sync_redis.Redis.from_url(settings.redis_url or "")
    try:
        assert list(client.scan_iter(f"{prefix}*")) == []
    finally:
        client.close()


def test_cli_writes_the_report_and_says_how_to_fix_a_missing_model(
    tmp_path: Path, model_dir: Path, redis_url: str, redis_prefix: str
) -> None:
    runner = CliRunner()
    path = _write(tmp_path, TINY)
    out = tmp_path / "results" / "dialogue.json"
    env = {
        "TRIAGE_MODEL_DIR": str(model_dir.parent),
        "TRIAGE_DATA_DIR": str(DATA_DIR),
        "TRIAGE_KB_DIR": str(KB_DIR),
        "TRIAGE_REDIS_URL": redis_url,
        "TRIAGE_REDIS_PREFIX": redis_prefix,
        "TRIAGE_VAR_DIR": str(tmp_path / "var"),
    }
    result = runner.invoke(app, ["eval", "--dialogue", "--set", str(path), "--report", str(out)], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert set(report) == {"generated_at", "seconds", "model", "sets"}
    assert report["sets"]["set"]["turns"] == 6 and report["sets"]["set"]["accuracy"] == 83.3
    assert "dialogue decisions" in result.output and "misses" in result.output

    result = runner.invoke(
        app, ["eval", "--dialogue", "--set", str(path)], env={**env, "TRIAGE_MODEL_DIR": str(tmp_path)}
    )
    assert result.exit_code == 1 and "triage train" in result.output
