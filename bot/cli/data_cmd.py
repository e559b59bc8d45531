"""``triage data convert``: CLINC150 JSON, CSV (text,label) and JSONL into Rasa YAML."""

from __future__ import annotations

import csv
import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.console import console, friendly_errors
from bot.errors import DataError
from bot.nlu.training_data import OUT_OF_SCOPE, dump_rasa_yaml

app = typer.Typer(no_args_is_help=True)

Pairs = list[tuple[str, str]]


class Format(StrEnum):
    auto = "auto"
    clinc150 = "clinc150"
    csv = "csv"
    jsonl = "jsonl"


def read_clinc150(path: Path) -> dict[str, Pairs]:
    """CLINC150 data_full.json → {train, val, test}, with oos_* labelled out_of_scope."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(path, None, f"not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or "train" not in raw:
        raise DataError(path, None, "not a CLINC150 file: expected keys train/val/test (and oos_*)")
    splits: dict[str, Pairs] = {}
    for split in ("train", "val", "test"):
        pairs = [(str(t), str(label)) for t, label in raw.get(split, [])]
        pairs += [(str(t), OUT_OF_SCOPE) for t, _ in raw.get(f"oos_{split}", [])]
        if pairs:
            splits[split] = pairs
    return splits


def read_csv(path: Path) -> dict[str, Pairs]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["text", "label"]:
        rows = rows[1:]
    pairs = []
    for line, row in enumerate(rows, 1):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise DataError(path, line, "each row needs two columns: text,label")
        pairs.append((row[0], row[1].strip()))
    return {"all": pairs}


def read_jsonl(path: Path) -> dict[str, Pairs]:
    """One JSON object per line with ``text`` and ``label`` (or ``intent``); ``split`` groups the output."""
    splits: dict[str, Pairs] = {}
    for line, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError as exc:
            raise DataError(path, line, f"not valid JSON: {exc}") from exc
        label = record.get("label", record.get("intent")) if isinstance(record, dict) else None
        if not isinstance(record, dict) or not record.get("text") or not label:
            raise DataError(path, line, 'each line needs "text" and "label" (or "intent")')
        splits.setdefault(str(record.get("split", "all")), []).append((str(record["text"]), str(label)))
    return splits


_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_\-]+")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")  # what the training-data loader and Rasa accept


def intent_name(label: str) -> str:
    """The label as an intent name: dots become ``__`` (SMP2019's "app.QUERY" → "app__QUERY"), anything
    else outside letters, digits, ``_`` and ``-`` becomes ``_`` (BANKING77's "reverted_card_payment?" →
    "reverted_card_payment"); "" when nothing is left (a Chinese label)."""
    name = _NOT_IN_NAME.sub("_", label.strip().replace(".", "__")).strip("_-")
    if name and not _NAME.match(name):  # starts with a digit or '-'
        name = f"intent_{name}"
    return name


def sanitise_labels(splits: dict[str, Pairs]) -> tuple[dict[str, Pairs], dict[str, str]]:
    """Every label as a name that ``triage eval`` and Rasa accept, the same in every split; returns the
    renamed data and {original: new} for the labels that changed. Two labels never merge into one name."""
    labels = list(dict.fromkeys(label for pairs in splits.values() for _, label in pairs))
    names: dict[str, str] = {}
    taken = {label for label in labels if label == OUT_OF_SCOPE or _NAME.match(label)}
    for index, label in enumerate(labels, 1):
        if label in taken:
            names[label] = label
            continue
        base = intent_name(label) or f"intent_{index}"
        name, n = base, 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        names[label] = name
    renamed = {split: [(text, names[label]) for text, label in pairs] for split, pairs in splits.items()}
    return renamed, {old: new for old, new in names.items() if old != new}


READERS = {Format.clinc150: read_clinc150, Format.csv: read_csv, Format.jsonl: read_jsonl}


def _guess(path: Path) -> Format:
    return {".json": Format.clinc150, ".csv": Format.csv, ".jsonl": Format.jsonl}.get(
        path.suffix, Format.jsonl
    )


@app.command()
def convert(
    source: Annotated[Path, typer.Argument(help="Input file (CLINC150 .json, .csv, .jsonl).")],
    out: Annotated[Path, typer.Option(help="Output folder; one Rasa YAML file per split.")],
    format: Annotated[
        Format, typer.Option(help="Input format (default: from the file extension).")
    ] = Format.auto,
) -> None:
    """Convert a dataset into Rasa 3.1 NLU YAML (one file per split: train.yml, val.yml, test.yml …)."""
    with friendly_errors():
        if not source.exists():
            raise DataError(source, None, "no such file")
        fmt = _guess(source) if format is Format.auto else format
        splits, renames = sanitise_labels(READERS[fmt](source))
        out.mkdir(parents=True, exist_ok=True)
        _report_renames(renames, out)
        for split, pairs in splits.items():
            target = out / f"{split}.yml"
            target.write_text(dump_rasa_yaml(pairs), encoding="utf-8")
            console.print(f"{target}: {len(pairs):,} examples, {len({p[1] for p in pairs})} intents")


SHOWN_RENAMES = 10


def _report_renames(renames: dict[str, str], out: Path) -> None:
    """Say which labels were renamed, and keep the whole mapping beside the data."""
    if not renames:
        return
    target = out / "intent_renames.json"
    target.write_text(json.dumps(renames, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    console.print(
        f"renamed {len(renames)} labels to names triage eval and Rasa accept "
        f"(letters, digits, _ and -); all of them in {target}:",
        highlight=False,
    )
    for old, new in list(renames.items())[:SHOWN_RENAMES]:
        console.print(f"  {old!r} → {new}", highlight=False)
    if len(renames) > SHOWN_RENAMES:
        console.print(f"  … and {len(renames) - SHOWN_RENAMES} more", highlight=False)
