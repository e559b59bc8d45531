"""Tickets: conversations waiting for a human, opened when nobody is on duty, numbered T-YYYYMMDD-NNNN.

A ticket lives in the ``{desk}`` slot next to its conversation's ownership record; it is opened, moved
and closed only by :class:`bot.store.handoffs.HandoffStore` transitions."""

from __future__ import annotations

import re

TICKET_ID = re.compile(r"\bT-\d{8}-\d{4}\b", re.IGNORECASE)
