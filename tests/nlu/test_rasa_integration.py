"""The real Rasa 3.6.21: export a tiny project from nlu_data, validate and train it with ``.venv-rasa``, serve it
with ``rasa run``, and parse through the ``rasa`` backend. Skipped where ``make rasa`` has not been run, unless
TRIAGE_REQUIRE_RASA=1 (then a missing .venv-rasa fails)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from bot.nlu.backend import ParseContext
from bot.nlu.pipeline import NLUPipeline
from bot.nlu.rasa_backend import RasaBackend
from bot.nlu.rasa_project import RasaServer
from bot.nlu.training_data import dump_rasa_yaml, load_training_data
from tests.conftest import DATA_DIR, ROOT, TODAY
from tests.live import free_port
from triagebot.cli import app

VENV = ROOT / ".venv-rasa"
INTENTS = ("greet", "invoice_verification_failed", "login_failed", "export_failed")
pytestmark = [pytest.mark.rasa, pytest.mark.slow, pytest.mark.timeout(900)]  # Rasa trains in setup


def _has_han(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


@pytest.fixture(scope="module")
def rasa_venv() -> Path:
    if not (VENV / "bin" / "rasa").exists():
        message = f"no Rasa at {VENV}: run `make rasa` (needs Python 3.10) to run the Rasa integration test"
        if os.environ.get("TRIAGE_REQUIRE_RASA") == "1":
            pytest.fail(message + " (TRIAGE_REQUIRE_RASA=1)")
        pytest.skip(message)
    return VENV


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny nlu_data: four intents, 13 Chinese and 13 English examples each, and its config."""
    data_dir = tmp_path_factory.mktemp("tiny_nlu")
    for name in ("config.yml", "jieba_userdict.txt", "severity.yml", "sentiment.yml", "synonyms.yml"):
        shutil.copyfile(DATA_DIR / name, data_dir / name)  # the config and the files it names
    examples = load_training_data(DATA_DIR).examples
    pairs = [
        (ex.text, ex.intent)
        for intent in INTENTS
        for chinese in (True, False)
        for ex in [e for e in examples if e.intent == intent and _has_han(e.text) is chinese][:13]
    ]
    (data_dir / "nlu.yml").write_text(dump_rasa_yaml(pairs), encoding="utf-8")
    return data_dir


@pytest.fixture(scope="module")
def project(rasa_venv: Path, tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny nlu_data exported, validated and trained with the real Rasa."""
    out = tmp_path_factory.mktemp("rasa_project")
    runner = CliRunner()
    for args in (
        ["export", "--data", str(tiny_data), "--project", str(out), "--epochs", "40"],
        ["validate", "--project", str(out), "--venv", str(rasa_venv)],
        ["train", "--project", str(out), "--venv", str(rasa_venv)],
    ):
        started = time.perf_counter()
        result = runner.invoke(app, ["rasa", *args])
        assert result.exit_code == 0, result.output
        print(f"triage rasa {args[0]}: {time.perf_counter() - started:.1f} s")
    assert (out / "models" / "nlu.tar.gz").exists()
    return out


@pytest.fixture(scope="module")
def server(project: Path, rasa_venv: Path) -> Iterator[RasaServer]:
    started = time.perf_counter()
    with RasaServer(project, free_port(), venv=rasa_venv) as server:
        status = server.wait_ready(timeout=240)
        print(f"rasa run ready in {time.perf_counter() - started:.1f} s")
        assert status["model_file"] == "nlu.tar.gz"
        yield server
    assert server.process is not None and server.process.poll() is not None


def test_the_exported_config_is_what_docs_rasa_md_says(project: Path) -> None:
    config = (project / "config.yml").read_text(encoding="utf-8")
    for expected in ("JiebaTokenizer", "analyzer: char_wb", "DIETClassifier", "FallbackClassifier"):
        assert expected in config
    assert "threshold: 0.35" in config


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("你好", "greet"),
        ("发票查验失败了怎么办", "invoice_verification_failed"),
        ("登录不了，一直提示密码错误", "login_failed"),
        ("export keeps failing", "export_failed"),
    ],
)
def test_parses_through_a_real_rasa_server(
    server: RasaServer, nlu: NLUPipeline, text: str, intent: str
) -> None:
    backend = RasaBackend(server.url, nlu, server.token, timeout=10.0, strict=True)
    try:
        parsed = backend.parse_now(text, ParseContext(today=TODAY))
    finally:
        backend.close()
    assert parsed.intent.name == intent, parsed.intent_ranking
    assert {r.name for r in parsed.intent_ranking} <= set(INTENTS)
    native = nlu.parse_typed(text, TODAY)
    assert (parsed.language, parsed.script, parsed.entities) == (
        native.language,
        native.script,
        native.entities,
    )


async def test_a_wrong_token_falls_back_to_the_native_pipeline(server: RasaServer, nlu: NLUPipeline) -> None:
    reasons: list[str] = []
    backend = RasaBackend(server.url, nlu, "not-the-token", on_degraded=reasons.append)
    try:
        parsed = await backend.parse("发票查验失败了怎么办", ParseContext(today=TODAY))
    finally:
        await backend.aclose()
    assert reasons == ["unauthorized"] and parsed == nlu.parse_typed("发票查验失败了怎么办", TODAY)


def test_triage_eval_trains_and_scores_through_a_real_rasa(
    tiny_data: Path, rasa_venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``triage eval --backend rasa``: Rasa trained on the tiny data, a held-out message per intent parsed
    through a real ``rasa run`` and scored by the same code as the native pipeline; the Rasa project and model
    it trained in a temporary folder are gone after (they were left behind, tens of MiB a run)."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    held_out = [
        ("您好呀", "greet"),
        ("这张发票查验一直不通过", "invoice_verification_failed"),
        ("i can't log into my account", "login_failed"),
        ("导出报销单的时候报错了", "export_failed"),
    ]
    (tmp_path / "test.yml").write_text(dump_rasa_yaml(held_out), encoding="utf-8")
    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--backend",
            "rasa",
            "--rasa-classifier",
            "logreg",
            "--train",
            str(tiny_data / "nlu.yml"),
            "--test",
            str(tmp_path / "test.yml"),
            "--config",
            str(tiny_data / "config.yml"),
            "--report",
            str(report),
        ],
        env={"TRIAGE_MODEL_DIR": str(tmp_path / "models")},  # its embedding cache, not the checkout's
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(report.read_text(encoding="utf-8"))
    assert scores["backend"] == "rasa-logreg"
    assert (scores["n_train"], scores["n_test"]) == (104, 4)
    assert scores["in_scope_accuracy_no_threshold"] >= 0.5
    assert scores["parse_ms_p50"] > 0
    assert list(temp.iterdir()) == []


def test_triage_rasa_serve_serves_until_it_is_stopped(project: Path, rasa_venv: Path, tmp_path: Path) -> None:
    """``triage rasa serve`` as a user runs it: it says when Rasa is ready, Rasa answers with the token, and a
    SIGTERM stops Rasa with it (no orphaned ``rasa run`` holding the port). A copy of the project: its
    rasa-server.log is not the module's running server's."""
    port, token = free_port(), "serve-test-token"
    copy = shutil.copytree(project, tmp_path / "project", ignore=shutil.ignore_patterns("rasa-server.log"))
    command = [sys.executable, "-m", "triagebot.cli", "rasa", "serve", "--project", str(copy)]
    command += ["--venv", str(rasa_venv), "--port", str(port), "--token", token, "--timeout", "240"]
    output: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as serve:
        assert serve.stdout is not None
        try:
            for line in serve.stdout:  # the command prints "Rasa ready at …" once the model is loaded
                output.append(line)
                if "Rasa ready at" in line:
                    break
            assert any(f"Rasa ready at http://127.0.0.1:{port}" in line for line in output), "".join(output)
            reply = httpx.post(
                f"http://127.0.0.1:{port}/model/parse",
                params={"token": token},
                json={"text": "你好"},
                timeout=10,
            )
            assert reply.status_code == 200 and reply.json()["intent"]["name"] == "greet"
            assert httpx.get(f"http://127.0.0.1:{port}/status", timeout=10).status_code == 401  # no token
        finally:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(60)
            except subprocess.TimeoutExpired:
                serve.kill()  # and Rasa, in its own session, is what the assertion below then finds
                serve.wait()
    assert serve.returncode == 0, "".join(output)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/status", timeout=5)
