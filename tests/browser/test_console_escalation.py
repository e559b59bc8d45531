"""An SLA escalation reaches the console as it happens: a note on the page, a sound and a desktop notification
(once alerts are turned on). A server whose normal tier must be answered within 3 s, so the escalation (at 80 %
of the target) comes while the test watches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LiveServer, start_server
from tests.browser.test_console_issue13 import NOTIFICATION_STUB, Customer, add_agent, close, sign_in

expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def fast_sla(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, model_dir: Path
) -> Iterator[LiveServer]:
    env = {"TRIAGE_ON_DUTY": "true", "TRIAGE_SLA__NORMAL__FIRST_RESPONSE_SECONDS": "3"}
    yield from start_server(tmp_path_factory, redis_url, model_dir, env)


@pytest.mark.parametrize(("locale", "title"), [("zh-CN", "紧急升级"), ("en-US", "Urgent escalation")])
def test_an_sla_escalation_sounds_and_notifies(
    browser: Any, fast_sla: LiveServer, locale: str, title: str
) -> None:
    console = sign_in(
        browser,
        fast_sla,
        add_agent(fast_sla, role="supervisor"),
        locale=locale,
        init_script=NOTIFICATION_STUB,
    )
    try:
        console.locator("#notify-toggle").click()
        customer = Customer(fast_sla)
        customer.say("我要转人工")  # normal: nobody takes it, the 3 s target runs out

        expect(console.locator("#alerts")).to_contain_text("SLA")
        console.wait_for_function("() => window.__notes.some(n => n.title.length)")
        notes = console.evaluate("() => window.__notes")
        escalation = [n for n in notes if n["title"] == title]
        assert escalation, notes
        assert console.evaluate("() => window.TriageConsole.sounds") >= 1
    finally:
        close(console)
