"""The seams of the design card that code review alone would not keep: import direction, one key module."""

from __future__ import annotations

import re
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("bot", "handoff_gateway", "triagebot")


@pytest.mark.parametrize(
    ("importer", "imported"),
    [("bot", "handoff_gateway"), ("bot", "triagebot"), ("handoff_gateway", "triagebot")],
)
def test_no_upward_imports(graph: grimp.ImportGraph, importer: str, imported: str) -> None:
    """Regression: bot and handoff_gateway imported each other; only the composition root sees both."""
    chain = graph.find_shortest_chain(importer=importer, imported=imported, as_packages=True)
    assert chain is None, f"{importer} reaches {imported} through {' -> '.join(chain or ())}"


def test_redis_key_formats_live_in_one_module() -> None:
    """Regression: key formats were spelled in many modules (f"{prefix}conv:…", "…queue:…")."""
    pattern = re.compile(r"""f["']\{(?:self\.)?(?:\w+\.)*prefix\}""")
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("bot", "handoff_gateway", "triagebot")
        for path in (ROOT / package).rglob("*.py")
        if path.name != "keys.py" and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "build keys with bot.store.keys.Keys instead"
