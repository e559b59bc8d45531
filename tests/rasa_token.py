"""The Rasa endpoints' shared secret as the test settings configure it (``TRIAGE_RASA_WEBHOOK_TOKEN``)."""

from __future__ import annotations

TOKEN = "test-rasa-webhook-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}  # Rasa's other form: ``?token=`` (``params={"token": TOKEN}``)
