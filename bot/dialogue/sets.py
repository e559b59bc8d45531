"""Labelled conversation sets (``nlu_data/eval/*.yml``), read strictly: every problem of a file is reported
at once with its file and line (the format is documented at the top of ``nlu_data/eval/dialogue.yml``).

The files have no ``nlu:`` key, so the NLU training loader skips them: they never enter training."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.errors import DataError
from bot.vocabulary import Severity

VERSION = "1"
# What the bot did with one message, as read from the engine's response (bot/dialogue/outcome.py).
DECISIONS = ("answer", "clarify", "offer_human", "handoff", "chitchat", "rephrase")
SCRIPTS = ("zh", "zh-Hant", "en", "mixed")
SEVERITIES = tuple(s.value for s in Severity)
_ID = re.compile(r"^[a-z0-9][a-z0-9_\-.]*$")
_HAN = re.compile(r"[\u3400-\u9fff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_CONVERSATION_KEYS = {"id", "script", "tags", "note", "say", "expect", "intent", "severity", "turns"}
_TURN_KEYS = {"say", "expect", "intent", "severity", "note"}


@dataclass(frozen=True)
class Turn:
    say: str
    expect: str  # one of DECISIONS: the decision wanted
    intents: tuple[str, ...] = ()  # any of these is right; empty: intent not scored
    severity: str | None = None
    line: int = 0  # of its 'say'
    also: tuple[str, ...] = ()  # other decisions that are as good (no KB article for "系统好慢")

    @property
    def accepted(self) -> tuple[str, ...]:
        return (self.expect, *self.also)


@dataclass(frozen=True)
class Conversation:
    id: str
    script: str  # one of SCRIPTS
    turns: tuple[Turn, ...]
    tags: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class EvalSet:
    name: str  # the file's stem: "dialogue", "heldout"
    path: Path
    conversations: tuple[Conversation, ...]

    @property
    def turns(self) -> int:
        return sum(len(c.turns) for c in self.conversations)


class SetErrors(DataError):
    """All the problems found in one labelled set."""

    def __init__(self, errors: list[DataError]) -> None:
        first = errors[0]
        super().__init__(first.path, first.line, first.reason)
        self.errors = errors

    def __str__(self) -> str:
        lines = [str(e) for e in self.errors]
        return f"{len(lines)} problem(s) in the labelled set:\n  " + "\n  ".join(lines)


def load_set(path: Path, known_intents: Iterable[str] | None = None) -> EvalSet:
    """Read and validate one set; raises :class:`SetErrors` listing every problem with its line.
    ``known_intents`` (the training data's, plus ``out_of_scope`` and ``nlu_fallback``) checks labels."""
    if not path.is_file():
        raise DataError(path, None, "no such labelled set; the sets live in nlu_data/eval/")
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except UnicodeDecodeError as exc:
        raise DataError(path, None, f"not UTF-8 text ({exc.reason})") from exc
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise DataError(path, line, f"invalid YAML: {exc.problem}") from exc
    reader = _Reader(path, set(known_intents) if known_intents is not None else None)
    conversations = reader.read(root)
    if reader.errors:
        raise SetErrors(reader.errors)
    return EvalSet(path.stem, path, tuple(conversations))


class _Reader:
    def __init__(self, path: Path, known: set[str] | None) -> None:
        self.path, self.known = path, known
        self.errors: list[DataError] = []

    def fail(self, node: yaml.Node | None, reason: str) -> None:
        self.errors.append(DataError(self.path, node.start_mark.line + 1 if node else None, reason))

    def read(self, root: yaml.Node | None) -> list[Conversation]:
        if not isinstance(root, yaml.MappingNode):
            self.fail(root, "the top level must be a mapping with 'version' and 'conversations'")
            return []
        top = _mapping(root)
        if "nlu" in top:
            self.fail(top["nlu"], "a labelled set has no 'nlu' key (the training loader would read it)")
        version = top.get("version")
        if not isinstance(version, yaml.ScalarNode) or version.value != VERSION:
            self.fail(version or root, f"'version' must be \"{VERSION}\"")
        items = top.get("conversations")
        if not isinstance(items, yaml.SequenceNode) or not items.value:
            self.fail(items or root, "'conversations' must be a non-empty list")
            return []
        out: list[Conversation] = []
        seen: dict[str, int] = {}
        for item in items.value:
            conv = self.conversation(item)
            if conv is None:
                continue
            if conv.id in seen:
                self.fail(item, f"duplicate id {conv.id!r} (first at line {seen[conv.id]})")
            seen.setdefault(conv.id, conv.line)
            out.append(conv)
        return out

    def conversation(self, node: yaml.Node) -> Conversation | None:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, "each conversation must be a mapping with 'id', 'script' and 'say' or 'turns'")
            return None
        fields = _mapping(node)
        for key in fields.keys() - _CONVERSATION_KEYS:
            self.fail(fields[key], f"unknown key {key!r} (allowed: {', '.join(sorted(_CONVERSATION_KEYS))})")
        cid = self.scalar(fields, "id", node)
        if cid is not None and not _ID.match(cid):
            self.fail(fields["id"], f"id {cid!r} must be lower-case letters, digits, '-', '_' or '.'")
        script = self.choice(fields, "script", SCRIPTS, node)
        tags = self.strings(fields.get("tags"))
        if "turns" in fields and "say" in fields:
            self.fail(node, "give either 'say' (one message) or 'turns', not both")
            return None
        if "turns" in fields:
            for key in ("expect", "intent", "severity"):
                if key in fields:
                    self.fail(fields[key], f"{key!r} belongs on each turn when 'turns' is given")
            turns_node = fields["turns"]
            if not isinstance(turns_node, yaml.SequenceNode) or not turns_node.value:
                self.fail(turns_node, "'turns' must be a non-empty list of {say, expect}")
                return None
            turns = [self.turn(t) for t in turns_node.value]
        else:
            turns = [self.turn(node, _CONVERSATION_KEYS)]
        good = [t for t in turns if t is not None]
        if cid is None or script is None or len(good) != len(turns):
            return None
        self.check_script(node, script, [t.say for t in good])
        return Conversation(cid, script, tuple(good), tuple(tags), node.start_mark.line + 1)

    def turn(self, node: yaml.Node, allowed: set[str] = _TURN_KEYS) -> Turn | None:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, "each turn must be a mapping with 'say' and 'expect'")
            return None
        fields = _mapping(node)
        for key in fields.keys() - allowed:
            self.fail(fields[key], f"unknown key {key!r} in a turn (allowed: {', '.join(sorted(allowed))})")
        say = self.scalar(fields, "say", node)
        if say is not None and not say.strip():
            self.fail(fields["say"], "'say' is empty")
        decisions = self.strings(fields.get("expect")) if "expect" in fields else []
        if "expect" not in fields:
            self.fail(node, "missing 'expect'")
        for bad in [d for d in decisions if d not in DECISIONS]:
            self.fail(fields["expect"], f"expect {bad!r} is not one of {', '.join(DECISIONS)}")
        expect = decisions[0] if decisions and all(d in DECISIONS for d in decisions) else None
        intents = self.strings(fields.get("intent"))
        if self.known is not None:
            for name in intents:
                if name not in self.known:
                    self.fail(fields["intent"], f"unknown intent {name!r} (not in the training data)")
        severity = self.choice(fields, "severity", SEVERITIES, node, required=False)
        if say is None or expect is None or not say.strip():
            return None
        line = fields["say"].start_mark.line + 1
        return Turn(say, expect, tuple(intents), severity, line, tuple(decisions[1:]))

    def scalar(self, fields: dict[str, yaml.Node], key: str, parent: yaml.Node) -> str | None:
        node = fields.get(key)
        if node is None:
            self.fail(parent, f"missing {key!r}")
            return None
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, f"{key!r} must be a string")
            return None
        return str(node.value)

    def choice(
        self,
        fields: dict[str, yaml.Node],
        key: str,
        allowed: tuple[str, ...],
        parent: yaml.Node,
        required: bool = True,
    ) -> str | None:
        if key not in fields and not required:
            return None
        value = self.scalar(fields, key, parent)
        if value is not None and value not in allowed:
            self.fail(fields[key], f"{key} {value!r} is not one of {', '.join(allowed)}")
            return None
        return value

    def strings(self, node: yaml.Node | None) -> list[str]:
        """A string or a list of strings."""
        if node is None:
            return []
        if isinstance(node, yaml.ScalarNode):
            return [str(node.value)]
        if isinstance(node, yaml.SequenceNode) and all(isinstance(n, yaml.ScalarNode) for n in node.value):
            return [str(n.value) for n in node.value]
        self.fail(node, "expected a string or a list of strings")
        return []

    def check_script(self, node: yaml.Node, script: str, texts: list[str]) -> None:
        """Catch a mislabelled script: the per-script figures are only as good as these labels."""
        typed = [t for t in texts if not t.startswith("/")]  # button payloads are not the user's writing
        han = any(_HAN.search(t) for t in typed)
        latin = any(_LATIN_WORD.search(_HAN.sub(" ", t)) for t in typed if _HAN.search(t))
        if script == "en" and han:
            self.fail(node, "script 'en' but a message has Chinese characters (use 'mixed')")
        elif script in ("zh", "zh-Hant") and not han:
            self.fail(node, f"script {script!r} but no message has Chinese characters")
        elif script == "mixed" and not (han and latin):
            self.fail(node, "script 'mixed' needs a message with both Chinese and English words")


def _mapping(node: yaml.MappingNode) -> dict[str, yaml.Node]:
    return {str(k.value): v for k, v in node.value}
