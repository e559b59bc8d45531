"""Shared fixtures: the repository's data, and one NLU model trained per test session."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.nlu.pipeline import NLUPipeline

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "nlu_data"
KB_DIR = ROOT / "kb_index"
TODAY = dt.date(2026, 11, 23)  # a Monday; relative dates in tests are computed from it


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The NLU trained once from nlu_data/ for the whole session."""
    out = tmp_path_factory.mktemp("models") / "nlu"
    NLUPipeline.load_or_train(DATA_DIR, out)
    return out


@pytest.fixture(scope="session")
def nlu(model_dir: Path) -> NLUPipeline:
    return NLUPipeline.load(model_dir, DATA_DIR)
