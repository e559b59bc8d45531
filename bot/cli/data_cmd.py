"""``triage data convert``: CLINC150 JSON, CSV (text,label) and JSONL into Rasa YAML."""

from __future__ import annotations

import csv
import json
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
        # Rasa intent names cannot contain dots or spaces (SMP2019 labels look like "app.QUERY").
        name = str(label).replace(".", "__").replace(" ", "_")
        splits.setdefault(str(record.get("split", "all")), []).append((str(record["text"]), name))
    return splits


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
        splits = READERS[fmt](source)
        out.mkdir(parents=True, exist_ok=True)
        for split, pairs in splits.items():
            target = out / f"{split}.yml"
            target.write_text(dump_rasa_yaml(pairs), encoding="utf-8")
            console.print(f"{target}: {len(pairs):,} examples, {len({p[1] for p in pairs})} intents")
