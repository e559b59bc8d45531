import pytest

from bot.nlu.language import detect_language
from bot.nlu.normalize import normalize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("發票查驗失敗", "发票查验失败"),
        ("ＡＢＣ１２３", "abc123"),
        ("  多个   空格\t\n在这里 ", "多个 空格 在这里"),
        ("Invoice\u200bUpload", "invoiceupload"),
        ("全角　空格", "全角 空格"),
        ("", ""),
        ("\x00\x01binary\x7f", "binary"),
    ],
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize(text).text == expected


@pytest.mark.parametrize(
    ("text", "span", "original"),
    [
        ("  發票ＡＢＣ１２３  查驗", (2, 8), "ＡＢＣ１２３"),
        ("号码：２４４４２", (3, 8), "２４４４２"),
        ("a  b", (2, 3), "b"),
    ],
)
def test_offsets_map_back_to_original(text: str, span: tuple[int, int], original: str) -> None:
    norm = normalize(text)
    start, end = norm.span_to_original(*span)
    assert text[start:end] == original


@pytest.mark.parametrize(
    ("text", "language", "script"),
    [
        ("发票查验失败", "zh", "Hans"),
        ("發票查驗失敗怎麼辦", "zh-Hant", "Hant"),
        ("verification failed again", "en", "Latn"),
        ("OCR 识别不出来", "mixed", "Hans"),
        ("invoice 上传一直 failed", "mixed", "Hans"),
        ("😀😀", "zh", "Hans"),
        ("12345", "zh", "Hans"),
    ],
)
def test_detect_language(text: str, language: str, script: str) -> None:
    guess = detect_language(text)
    assert (guess.language, guess.script) == (language, script)
