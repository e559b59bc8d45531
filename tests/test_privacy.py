"""Masking what is stored: email addresses, tax ids after any of the NLU's context words, and entities of
sensitive kinds whatever their format (the phone/ID/card table is in tests/store/test_state.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.contracts.parse import Entity
from bot.privacy import mask_entity, mask_sensitive, redact


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("邮箱 alice.wang@example.com 谢谢", "邮箱 a***@example.com 谢谢"),
        ("ALICE@EXAMPLE.COM", "A***@EXAMPLE.COM"),
        ("税号是110108123456789", "税号是***********6789"),
        ("信用代码 91350100m000100y43", "信用代码 **************0y43"),
        ("tax no: 11010812345678A", "tax no: ***********678A"),
        ("订单号 110108123456789", "订单号 110108123456789"),  # no tax context: any 15-digit number
    ],
)
def test_masking(text: str, masked: str) -> None:
    assert mask_sensitive(text) == masked
    assert mask_sensitive(masked) == masked  # idempotent


@pytest.mark.parametrize(
    ("entity", "masked"),
    [
        ({"entity": "tax_id", "value": "110108123456789", "text": "110108123456789"}, "***********6789"),
        ({"entity": "email", "value": "alice@acme.com", "text": "Alice@acme.com"}, "a***@acme.com"),
        (
            {"entity": "bank_card", "value": "6222021234567891", "text": "6222021234567891"},
            "************7891",
        ),
        (
            {"entity": "id_card", "value": "11010519491231002X", "text": "11010519491231002X"},
            "**************002X",
        ),
        ({"entity": "invoice_number", "value": "24442000000123456789", "text": "24442000000123456789"}, None),
    ],
)
def test_entities_of_sensitive_kinds_are_masked_whatever_their_format(
    entity: dict[str, Any], masked: str | None
) -> None:
    out = mask_entity(entity)
    assert out["value"] == (masked or entity["value"])
    assert entity["text"] not in out["text"] or masked is None
    assert mask_entity(out) == out


def test_redact_masks_the_spans_of_sensitive_entities() -> None:
    text = "卡 6222021234567891 发票 24442000000123456789"  # the card fails Luhn: only the entity knows
    entities = [
        Entity("bank_card", 2, 18, "6222021234567891", "6222021234567891"),
        Entity("invoice_number", 22, 42, "24442000000123456789", "24442000000123456789"),
    ]
    assert redact(text, entities) == "卡 ************7891 发票 24442000000123456789"
    assert redact(text) == text
