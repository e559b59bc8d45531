"""Shared fixtures: the repository's data, and one NLU model trained per test session."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis as sync_redis
from pydantic import SecretStr

from bot.kb.search import KnowledgeBase
from bot.nlu import registry
from bot.nlu.classifier import TfidfIntentClassifier
from bot.nlu.pipeline import NLUPipeline
from bot.nlu.registry import Context
from bot.nlu.training_data import load_training_data
from bot.settings import Settings
from tests.identity_tokens import SECRET as IDENTITY_SECRET
from tests.live import RedisServer, free_port, reachable
from tests.rasa_token import TOKEN as RASA_TOKEN

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "nlu_data"
KB_DIR = ROOT / "kb_index"
TODAY = dt.date(2026, 11, 23)  # a Monday; relative dates in tests are computed from it


def tfidf_classifier(settings: dict[str, Any]) -> TfidfIntentClassifier:
    """A tfidf_classifier of ``settings`` over the defaults (its constructor checks them)."""
    config = registry.resolve_config("tfidf_classifier", settings)
    return cast(TfidfIntentClassifier, registry.create("tfidf_classifier", config, Context(DATA_DIR)))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The NLU trained once from nlu_data/ for the whole session."""
    out = tmp_path_factory.mktemp("models") / "nlu"
    NLUPipeline.load_or_train(DATA_DIR, out)
    return out


@pytest.fixture(scope="session")
def nlu(model_dir: Path) -> NLUPipeline:
    return NLUPipeline.load(model_dir, DATA_DIR)


# ------------------------------------------------------------------ Redis and the app
CI_REDIS = "redis://127.0.0.1:6379/9"  # CI's server; db 9 and a per-test key prefix keep us apart


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """TRIAGE_TEST_REDIS_URL, else the local server on 6379 (db 9), else our own redis-server."""
    configured = os.environ.get("TRIAGE_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    if reachable(CI_REDIS):
        yield CI_REDIS
        return
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = sync_redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    except sync_redis.exceptions.RedisError:
        pass  # a test that stopped its own server
    finally:
        client.close()


@pytest.fixture(scope="session")
def knowledge_base(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    data = load_training_data(DATA_DIR)
    return KnowledgeBase(
        KB_DIR / "articles",
        tmp_path_factory.mktemp("kbidx") / "kb",
        KB_DIR / "config.yml",
        data.synonyms,
        data.intents,
    )


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, redis_prefix: str, model_dir: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        var_dir=tmp_path / "var",
        model_dir=model_dir.parent,
        data_dir=DATA_DIR,
        kb_dir=KB_DIR,
        heartbeat_seconds=0.5,
        # Freezing is process-wide: in-process apps here share one heap with pytest and each other
        # (tests/app/test_gcpause.py turns it on for its own app).
        gc_freeze=False,
        on_duty=True,  # the conversation tests queue without signed-in agents; gateway tests use presence
        rota_file=tmp_path / "no-rota.yml",
        identity_secret=SecretStr(IDENTITY_SECRET),  # tests/identity_tokens.py signs with it
        rasa_webhook_token=SecretStr(RASA_TOKEN),  # tests/rasa_token.py; the Rasa endpoints are off without
    )


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 HTTP server (moto's) on a free loopback port, for the attachment store's bucket."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3's credentials and region from the environment, as a deployment would give them."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
