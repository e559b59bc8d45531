"""Rasa 3.x YAML training data, read strictly.

Rasa warns about much of what this module rejects: here bad data fails with the file, the line and the
reason, because a silently skipped example is a silently worse model.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.errors import DataError

logger = logging.getLogger(__name__)

OUT_OF_SCOPE = "out_of_scope"
SUPPORTED_VERSIONS = {"2.0", "3.0", "3.1"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
# [text](entity) | [text](entity:value) | [text]{"entity": ..., "value": ...}
_ANNOTATION = re.compile(
    r"\[(?P<text>[^\[\]]+?)\]"
    r"(?:\((?P<entity>[^():]+?)(?::(?P<value>[^()]+))?\)|(?P<json>\{[^{}]*\}))"
)


@dataclass(frozen=True)
class EntitySpan:
    entity: str
    start: int
    end: int
    value: str


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    entities: tuple[EntitySpan, ...] = ()
    source: str = ""
    line: int | None = None


@dataclass
class TrainingData:
    examples: list[Example] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)  # variant (lower-case) -> canonical value
    regexes: dict[str, list[str]] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)

    @property
    def intents(self) -> list[str]:
        return sorted({ex.intent for ex in self.examples})

    def in_scope(self) -> list[Example]:
        return [ex for ex in self.examples if ex.intent != OUT_OF_SCOPE]

    def out_of_scope(self) -> list[Example]:
        return [ex for ex in self.examples if ex.intent == OUT_OF_SCOPE]

    def merge(self, other: TrainingData) -> None:
        self.examples.extend(other.examples)
        self.synonyms.update(other.synonyms)
        for name, patterns in other.regexes.items():
            self.regexes.setdefault(name, []).extend(patterns)
        for name, items in other.lookups.items():
            self.lookups.setdefault(name, []).extend(items)


def parse_annotated(
    text: str, path: Path | str = "<text>", line: int | None = None
) -> tuple[str, list[EntitySpan]]:
    """Strip Rasa entity annotations from one example, returning the plain text and the spans."""
    plain: list[str] = []
    spans: list[EntitySpan] = []
    pos = 0
    for match in _ANNOTATION.finditer(text):
        plain.append(text[pos : match.start()])
        start = sum(len(p) for p in plain)
        entity_text = match.group("text")
        if match.group("json"):
            import json

            try:
                spec = json.loads(match.group("json"))
            except ValueError as exc:
                raise DataError(
                    path, line, f"entity annotation {match.group(0)!r} is not valid JSON: {exc}"
                ) from exc
            if not isinstance(spec, dict) or "entity" not in spec:
                raise DataError(path, line, f'entity annotation {match.group(0)!r} needs an "entity" key')
            entity, value = str(spec["entity"]), str(spec.get("value", entity_text))
        else:
            entity = match.group("entity").strip()
            value = (match.group("value") or entity_text).strip()
        if not _NAME.match(entity):
            raise DataError(path, line, f"entity name {entity!r} in {match.group(0)!r} is not a valid name")
        if entity_text != entity_text.strip() or not entity_text.strip():
            raise DataError(
                path, line, f"entity text in {match.group(0)!r} is empty or has surrounding spaces"
            )
        plain.append(entity_text)
        spans.append(EntitySpan(entity, start, start + len(entity_text), value))
        pos = match.end()
    plain.append(text[pos:])
    result = "".join(plain)
    # Leftover brackets mean an annotation we could not read: Rasa would train on the raw markup.
    leftover = re.search(r"\[[^\]]*\]\s*[({]|\]\(", result)
    if leftover:
        raise DataError(
            path,
            line,
            f"malformed entity annotation near {result[leftover.start() :][:40]!r}; "
            "write it as [text](entity_name)",
        )
    return result, spans


def _examples_block(node: yaml.Node, path: Path) -> Iterator[tuple[str, int]]:
    """Yield (example text, 1-based line) from an ``examples:`` node, literal block or list."""
    if isinstance(node, yaml.ScalarNode):
        base = node.start_mark.line + (1 if node.style in ("|", ">") else 0)
        for offset, raw in enumerate(node.value.split("\n")):
            stripped = raw.strip()
            if not stripped:
                continue
            line = base + offset + 1
            if not stripped.startswith("- "):
                raise DataError(path, line, f"example {stripped[:40]!r} must start with '- '")
            yield stripped[2:].strip(), line
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            line = item.start_mark.line + 1
            if isinstance(item, yaml.MappingNode):
                mapping = {k.value: v for k, v in item.value}
                text_node = mapping.get("text")
                if not isinstance(text_node, yaml.ScalarNode):
                    raise DataError(path, line, "an example given as a mapping needs a 'text' string")
                yield text_node.value.strip().removeprefix("- ").strip(), line
            elif isinstance(item, yaml.ScalarNode):
                yield item.value.strip(), line
            else:
                raise DataError(path, line, "an example must be a string or a mapping with 'text'")
    else:
        raise DataError(
            path, node.start_mark.line + 1, "'examples' must be a literal block (|) of '- ' lines"
        )


def _load_file(path: Path) -> TrainingData:
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except UnicodeDecodeError as exc:
        raise DataError(path, None, f"not UTF-8 text ({exc.reason})") from exc
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise DataError(path, line, f"invalid YAML: {exc.problem}") from exc
    except yaml.reader.ReaderError as exc:  # a control character YAML does not allow, e.g. \x1f
        raise DataError(path, None, f"invalid YAML: {exc}") from exc
    except RecursionError as exc:  # thousands of nested [[[...
        raise DataError(path, None, "invalid YAML: nested too deeply") from exc
    data = TrainingData()
    if root is None:
        return data
    if not isinstance(root, yaml.MappingNode):
        raise DataError(
            path, root.start_mark.line + 1, "the top level must be a mapping with 'version' and 'nlu'"
        )
    top = {k.value: v for k, v in root.value}
    if "nlu" not in top:
        return data  # a config, domain or stories file: not NLU data
    version = top.get("version")
    if version is not None and str(version.value) not in SUPPORTED_VERSIONS:
        raise DataError(
            path,
            version.start_mark.line + 1,
            f"version {version.value!r} is not a Rasa training-data version ({sorted(SUPPORTED_VERSIONS)})",
        )
    nlu = top["nlu"]
    if not isinstance(nlu, yaml.SequenceNode):
        raise DataError(
            path, nlu.start_mark.line + 1, "'nlu' must be a list of intent/synonym/regex/lookup items"
        )
    for item in nlu.value:
        _load_item(item, path, data)
    return data


def _load_item(item: yaml.Node, path: Path, data: TrainingData) -> None:
    line = item.start_mark.line + 1
    if not isinstance(item, yaml.MappingNode):
        raise DataError(path, line, "each 'nlu' item must be a mapping such as '- intent: greet'")
    fields = {k.value: v for k, v in item.value}
    kinds = [k for k in ("intent", "synonym", "regex", "lookup") if k in fields]
    if len(kinds) != 1:
        raise DataError(path, line, "each 'nlu' item needs exactly one of intent, synonym, regex, lookup")
    kind = kinds[0]
    name_node = fields[kind]
    name = str(name_node.value).strip() if isinstance(name_node, yaml.ScalarNode) else ""
    # A synonym's name is the canonical value (any text); the others are identifiers.
    if not name or (kind != "synonym" and not _NAME.match(name)):
        raise DataError(path, line, f"{kind} name {name!r} is empty or not a valid name")
    if "examples" not in fields:
        raise DataError(path, line, f"{kind} {name!r} has no 'examples'")
    entries = list(_examples_block(fields["examples"], path))
    if not entries:
        raise DataError(path, line, f"{kind} {name!r} has no examples")
    if kind == "intent":
        for text, ex_line in entries:
            plain, spans = parse_annotated(text, path, ex_line)
            if not plain.strip():
                raise DataError(path, ex_line, f"an example of intent {name!r} is empty")
            data.examples.append(Example(plain, name, tuple(spans), str(path), ex_line))
    elif kind == "synonym":
        for text, _ in entries:
            data.synonyms[text.lower()] = name
    elif kind == "regex":
        for text, ex_line in entries:
            try:
                re.compile(text)
            except re.error as exc:
                raise DataError(path, ex_line, f"regex {name!r} does not compile: {exc}") from exc
            data.regexes.setdefault(name, []).append(text)
    else:
        data.lookups.setdefault(name, []).extend(text for text, _ in entries)


def yaml_files(path: Path) -> list[Path]:
    """The YAML files under ``path`` (a file or a folder, searched recursively), in a stable order."""
    if not path.exists():
        raise DataError(path, None, "no such file or folder")
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def load_training_data(paths: Path | Iterable[Path]) -> TrainingData:
    """Load every Rasa NLU file under ``paths``; raise :class:`DataError` on the first problem."""
    data = TrainingData()
    for root in [paths] if isinstance(paths, Path) else paths:
        for file in yaml_files(root):
            data.merge(_load_file(file))
    _check_conflicts(data)
    return data


def _check_conflicts(data: TrainingData) -> None:
    seen: dict[str, Example] = {}
    for ex in data.examples:
        key = ex.text.strip().lower()
        first = seen.get(key)
        if first is None:
            seen[key] = ex
        elif first.intent != ex.intent:
            raise DataError(
                ex.source,
                ex.line,
                f"example {ex.text!r} is also labelled {first.intent!r} "
                f"at {first.source}:{first.line}; one text must have one intent",
            )
        else:
            logger.warning("%s:%s: duplicate example %r", ex.source, ex.line, ex.text)


def dump_rasa_yaml(examples: Iterable[tuple[str, str]]) -> str:
    """Write (text, intent) pairs as Rasa 3.1 NLU YAML, intents in first-seen order."""
    by_intent: dict[str, list[str]] = {}
    for text, intent in examples:
        clean = " ".join(text.split())
        if clean:
            by_intent.setdefault(intent, []).append(clean)
    lines = ['version: "3.1"', "nlu:"]
    for intent, texts in by_intent.items():
        lines.append(f"- intent: {intent}")
        lines.append("  examples: |")
        # Brackets would be read back as entity annotations; escape them to full-width look-alikes.
        lines.extend(f"    - {t.replace('[', '［').replace(']', '］')}" for t in texts)
    return "\n".join(lines) + "\n"


def as_dict(example: Example) -> dict[str, Any]:
    return {
        "text": example.text,
        "intent": example.intent,
        "entities": [e.__dict__ for e in example.entities],
    }
