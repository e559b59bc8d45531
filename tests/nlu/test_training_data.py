from pathlib import Path

import pytest

from bot.errors import DataError
from bot.nlu.training_data import dump_rasa_yaml, load_training_data, parse_annotated
from tests.conftest import DATA_DIR

GOOD = """version: "3.1"
nlu:
- intent: invoice_verification_failed
  examples: |
    - 发票查验失败
    - 号码[24442000000123456789](invoice_number)查不到
- intent: greet
  examples:
  - text: 你好
  - hi there
- synonym: 查验
  examples: |
    - 验真
- regex: employee_id
  examples: |
    - emp-\\d{4}
- lookup: erp
  examples: |
    - 用友
    - 金蝶
"""


def write(tmp_path: Path, text: str, name: str = "nlu.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_rasa_yaml(tmp_path: Path) -> None:
    data = load_training_data(write(tmp_path, GOOD))
    assert data.intents == ["greet", "invoice_verification_failed"]
    example = data.examples[1]
    assert example.text == "号码24442000000123456789查不到"
    assert example.line == 6
    assert [(e.entity, example.text[e.start : e.end]) for e in example.entities] == [
        ("invoice_number", "24442000000123456789")
    ]
    assert data.synonyms == {"验真": "查验"}
    assert data.regexes == {"employee_id": ["emp-\\d{4}"]}
    assert data.lookups == {"erp": ["用友", "金蝶"]}


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n   bad: [\n', None, "invalid YAML"),
        ('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n', 3, "has no examples"),
        ('version: "3.1"\nnlu:\n- intent: greet\n', 3, "has no 'examples'"),
        (
            'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n    hello\n',
            6,
            "must start with '- '",
        ),
        ('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi [there](\n', 5, "malformed entity"),
        (
            'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi [there](bad name)\n',
            5,
            "not a valid name",
        ),
        (
            'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi [ there ](x)\n',
            5,
            "surrounding spaces",
        ),
        ('version: "3.1"\nnlu:\n- intent: bad name\n  examples: |\n    - hi\n', 3, "not a valid name"),
        (
            'version: "9.9"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n',
            1,
            "not a Rasa training-data version",
        ),
        ('version: "3.1"\nnlu: hello\n', 2, "must be a list"),
        ('version: "3.1"\nnlu:\n- greet\n', 3, "must be a mapping"),
        ('version: "3.1"\nnlu:\n- intent: a\n  regex: b\n  examples: |\n    - x\n', 3, "exactly one of"),
        ('version: "3.1"\nnlu:\n- regex: r\n  examples: |\n    - ([a-z\n', 5, "does not compile"),
        ("- just a list\n", 1, "top level must be a mapping"),
    ],
)
def test_bad_data_names_file_line_and_reason(
    tmp_path: Path, text: str, line: int | None, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DataError) as info:
        load_training_data(path)
    assert info.value.path == path
    if line is not None:
        assert info.value.line == line
    assert reason in info.value.reason
    assert str(path) in str(info.value)


def test_one_text_with_two_intents_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, 'version: "3.1"\nnlu:\n- intent: a\n  examples: |\n    - same text\n', "a.yml")
    write(tmp_path, 'version: "3.1"\nnlu:\n- intent: b\n  examples: |\n    - Same text\n', "b.yml")
    with pytest.raises(DataError, match="also labelled 'a'"):
        load_training_data(tmp_path)


def test_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_bytes(b'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - \xff\xfe\n')
    with pytest.raises(DataError, match="not UTF-8"):
        load_training_data(path)


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_training_data(tmp_path / "missing")


def test_non_nlu_yaml_files_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, "pipeline:\n  - name: normalizer\n", "config.yml")
    write(tmp_path, GOOD)
    assert len(load_training_data(tmp_path).examples) == 4


@pytest.mark.parametrize(
    ("annotated", "plain", "spans"),
    [
        (
            "[24442000000123456789](invoice_number) 查验失败",
            "24442000000123456789 查验失败",
            [("invoice_number", 0, 20, "24442000000123456789")],
        ),
        ("验[真](kw:查验)", "验真", [("kw", 1, 2, "查验")]),
        (
            'call [138-1234-5678]{"entity": "phone", "value": "13812345678"}',
            "call 138-1234-5678",
            [("phone", 5, 18, "13812345678")],
        ),
        ("no annotations here", "no annotations here", []),
    ],
)
def test_parse_annotated(annotated: str, plain: str, spans: list[tuple[str, int, int, str]]) -> None:
    text, entities = parse_annotated(annotated)
    assert text == plain
    assert [(e.entity, e.start, e.end, e.value) for e in entities] == spans


def test_dump_round_trips(tmp_path: Path) -> None:
    path = write(tmp_path, dump_rasa_yaml([("hello [there]", "greet"), ("bye", "goodbye"), ("  ", "greet")]))
    data = load_training_data(path)
    assert [(e.text, e.intent) for e in data.examples] == [("hello ［there］", "greet"), ("bye", "goodbye")]


def test_repository_data_meets_the_bar() -> None:
    """nlu_data/ loads strictly and has ≥ 30 zh and ≥ 30 en examples for every intent."""
    from bot.nlu.language import detect_language

    data = load_training_data(DATA_DIR)
    required = {
        "invoice_verification_failed",
        "invoice_recognition_failed",
        "invoice_upload_failed",
        "invoice_duplicate",
        "invoice_title_mismatch",
        "invoice_archive",
        "login_failed",
        "password_reset",
        "account_permission",
        "reimbursement_submit_failed",
        "approval_flow_issue",
        "payment_status",
        "export_failed",
        "api_integration",
        "data_missing",
        "system_outage",
        "policy_question",
        "request_human",
        "complaint",
        "greet",
        "goodbye",
        "thanks",
        "affirm",
        "deny",
        "out_of_scope",
    }
    assert set(data.intents) == required
    for intent in required - {"out_of_scope"}:
        examples = [ex for ex in data.examples if ex.intent == intent]
        english = sum(detect_language(ex.text).language == "en" for ex in examples)
        assert english >= 30, intent
        assert len(examples) - english >= 30, intent
    assert len(data.out_of_scope()) >= 100
