from typing import Any

import pytest

from bot.nlu.entities import EntityExtractor
from bot.nlu.identifiers import is_valid_digital_invoice_number, is_valid_uscc, uscc_check_char
from bot.nlu.normalize import normalize
from tests.conftest import TODAY


def extract(text: str, extractor: EntityExtractor | None = None) -> list[tuple[str, str, Any]]:
    entities = (extractor or EntityExtractor()).extract(normalize(text), TODAY)
    for e in entities:
        assert text[e["start"] : e["end"]] == e["text"]
    return [(e["entity"], e["text"], e["value"]) for e in entities]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # invoice numbers: 20-digit 数电发票 (year prefix 21..next year), 8-digit only after a context word
        (
            "发票号码24442000000123456789查验失败",
            [("invoice_number", "24442000000123456789", "24442000000123456789")],
        ),
        (
            "發票號碼：24442000000123456789",
            [("invoice_number", "24442000000123456789", "24442000000123456789")],
        ),
        ("号码 01234567 查不到", [("invoice_number", "01234567", "01234567")]),
        ("订单 01234567", []),
        ("19442000000123456789", []),  # year 2019: before 数电发票 existed
        ("244420000001234567891", []),  # 21 digits
        # invoice codes: 10 or 12 digits
        ("发票代码044031900111", [("invoice_code", "044031900111", "044031900111")]),
        ("invoice code 3100223130 wrong", [("invoice_code", "3100223130", "3100223130")]),
        ("3100223130", []),  # a bare 10-digit number is not enough
        # tax ids: USCC with a correct check character, or a 15-character id after a context word
        ("税号91350100M000100Y43抬头不对", [("tax_id", "91350100M000100Y43", "91350100M000100Y43")]),
        ("税号 91350100m000100y43", [("tax_id", "91350100m000100y43", "91350100M000100Y43")]),
        ("税号91350100M000100Y44", []),  # wrong check character
        ("税号91350100I000100Y43", []),  # I is not in the USCC alphabet
        ("纳税人识别号 110108123456789", [("tax_id", "110108123456789", "110108123456789")]),
        ("id 110108123456789", []),
        # amounts
        ("报销¥1,234.50还没到账", [("amount", "¥1,234.50", {"amount": 1234.5, "currency": "CNY"})]),
        ("金额1234.5元", [("amount", "1234.5元", {"amount": 1234.5, "currency": "CNY"})]),
        ("RMB 200 for taxi", [("amount", "RMB 200", {"amount": 200.0, "currency": "CNY"})]),
        ("大概3千元", [("amount", "3千元", {"amount": 3000.0, "currency": "CNY"})]),
        ("hotel was $45.80", [("amount", "$45.80", {"amount": 45.8, "currency": "USD"})]),
        ("２００块", [("amount", "２００块", {"amount": 200.0, "currency": "CNY"})]),
        # dates (TODAY is Monday 2026-11-23)
        ("2026-11-01 开的票", [("date", "2026-11-01", "2026-11-01")]),
        ("2026年11月1日", [("date", "2026年11月1日", "2026-11-01")]),
        ("11月1日开的", [("date", "11月1日", "2026-11-01")]),
        ("12月30日的票", [("date", "12月30日", "2025-12-30")]),  # far in the future -> last year
        ("昨天提交的", [("date", "昨天", "2026-11-22")]),
        ("yesterday I uploaded", [("date", "yesterday", "2026-11-22")]),
        ("上周五", [("date", "上周五", "2026-11-20")]),
        ("last friday", [("date", "last friday", "2026-11-20")]),
        ("on Nov 3", [("date", "Nov 3", "2026-11-03")]),
        ("2026-02-30", []),  # no such day
        ("3 days ago", [("date", "3 days ago", "2026-11-20")]),
        ("两周前提交的", [("date", "两周前", "2026-11-09")]),
        ("uploaded it on friday", [("date", "friday", "2026-11-20")]),  # the most recent Friday
        ("大前天", [("date", "大前天", "2026-11-20")]),
        # error codes
        ("错误码：E2031", [("error_code", "E2031", "E2031")]),
        ("Error 1032: invoice info mismatch", [("error_code", "1032", "1032")]),
        ("ERR_INVOICE_403", [("error_code", "ERR_INVOICE_403", "ERR_INVOICE_403")]),
        ("got PW_500 again", [("error_code", "PW_500", "PW_500")]),
        # phones, emails, tickets
        ("call me 138-1234-5678", [("phone", "138-1234-5678", "13812345678")]),
        ("+86 139 0000 1111", [("phone", "+86 139 0000 1111", "13900001111")]),
        ("12812345678", []),  # no 12x mobile prefix
        ("邮箱 zhang.wei@acme.cn", [("email", "zhang.wei@acme.cn", "zhang.wei@acme.cn")]),
        ("工单 t-20261103-0042 进度", [("ticket_id", "t-20261103-0042", "T-20261103-0042")]),
        ("T-2026110-0042", []),
    ],
)
def test_entities(text: str, expected: list[tuple[str, str, Any]]) -> None:
    assert extract(text) == expected


def test_several_entities_in_one_message() -> None:
    found = extract("发票代码044031900111 号码 01234567，金额¥200，昨天开的")
    assert [e[0] for e in found] == ["invoice_code", "invoice_number", "amount", "date"]


def test_data_regexes_lookups_and_synonyms() -> None:
    extractor = EntityExtractor(
        regexes={"employee_id": [r"emp-\d{4}"]},
        lookups={"erp": ["用友", "金蝶", "SAP"]},
        synonyms={"sap": "SAP S/4HANA"},
    )
    assert extract("EMP-0042 对接 sap 失败", extractor) == [
        ("employee_id", "EMP-0042", "EMP-0042"),
        ("erp", "sap", "SAP S/4HANA"),
    ]


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("91350100M000100Y43", True),
        ("91110000802100433B", True),
        ("91440300708461136T", True),
        ("91350100M000100Y40", False),
        ("9135010", False),
        ("ZZ350100M000100Y43", False),
    ],
)
def test_uscc_check_character(code: str, valid: bool) -> None:
    assert is_valid_uscc(code) is valid


def test_uscc_check_char_matches_gb32100_example() -> None:
    assert uscc_check_char("91350100M000100Y4") == "3"


def test_digital_invoice_number_year() -> None:
    assert is_valid_digital_invoice_number("25442000000123456789", TODAY)
    assert not is_valid_digital_invoice_number("29442000000123456789", TODAY)
