"""Per-message language detection: ``zh``, ``zh-Hant``, ``en`` or ``mixed``.

Scripts are counted, not guessed by a model: Han characters versus Latin letters decide Chinese,
English or a mix, and Han characters that OpenCC would simplify mark Traditional Chinese.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.nlu.normalize import to_simplified
from bot.vocabulary import Script

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# A message is "mixed" when the minority script still carries this share of the letters.
MIXED_SHARE = 0.2
TRADITIONAL_SHARE = 0.05


@dataclass(frozen=True)
class LanguageGuess:
    language: str  # zh | zh-Hant | en | mixed
    script: Script  # which script replies should use

    @property
    def is_chinese(self) -> bool:
        return self.script in (Script.HANS, Script.HANT)


def detect_language(text: str, default: str = "zh") -> LanguageGuess:
    """Guess the language of one message. With no letters at all, ``default`` is returned."""
    han = HAN.findall(text)
    latin_letters = sum(len(w) for w in LATIN_WORD.findall(text))
    han_script = Script.HANS
    if han:
        simplified = to_simplified("".join(han))
        changed = sum(a != b for a, b in zip(han, simplified, strict=True))
        if changed and changed / len(han) >= TRADITIONAL_SHARE:
            han_script = Script.HANT
    # A Han character carries about as much as a two-to-three-letter English word piece.
    han_weight = len(han) * 2
    total = han_weight + latin_letters
    if total == 0:
        return LanguageGuess(
            default,
            Script.HANT if default == "zh-Hant" else Script.LATN if default == "en" else Script.HANS,
        )
    latin_share = latin_letters / total
    if not han:
        return LanguageGuess("en", Script.LATN)
    if latin_share >= MIXED_SHARE and latin_letters >= 3:
        script = han_script if latin_share < 0.5 or len(han) >= 4 else Script.LATN
        return LanguageGuess("mixed", script)
    return LanguageGuess("zh-Hant" if han_script is Script.HANT else "zh", han_script)
