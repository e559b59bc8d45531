"""Where attachment bytes live: a folder under ``var/`` by default, or an S3-compatible bucket
(``TRIAGE_ATTACHMENTS_URL=s3://bucket/prefix``, with ``TRIAGE_S3_ENDPOINT_URL`` for MinIO, Ceph or another
S3-compatible service). Redis keeps only each attachment's metadata (``bot.store.attachments``): megabytes of
screenshots never sit in the memory that every conversation's state shares, nor in its AOF.

Both stores are synchronous (a file system, boto3); :class:`~bot.store.attachments.AttachmentStore` calls them
off the event loop. Objects are named ``<digest of the conversation id>/<attachment id>``, so nothing a
platform or a client chose reaches a path or an object key.

Retention follows the transcript's: :meth:`Blobs.sweep` deletes objects older than it (the app runs it
hourly); on S3 a bucket lifecycle rule with the same number of days does the same without listing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import os
import time
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from bot.errors import ConfigError


def blob_name(cid: str, attachment_id: str) -> str:
    folder = hashlib.sha256(cid.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{folder}/{attachment_id}"


class Blobs(Protocol):
    description: str

    def put(self, name: str, content: bytes) -> None: ...

    def get(self, name: str) -> bytes | None:
        """The bytes, or None when there is no such object (expired, swept, never written)."""
        ...

    def sweep(self, older_than_seconds: float) -> int:
        """Delete objects written more than ``older_than_seconds`` ago; how many were deleted."""
        ...


class LocalBlobs:
    """One file per attachment under ``root``, written to a temporary name and renamed, so a reader never
    sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"folder {root}"

    def put(self, name: str, content: bytes) -> None:
        path = self.root / name
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        for last in (False, True):
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                tmp.write_bytes(content)
                break
            except FileNotFoundError:  # a sweep removed the (old, empty) folder just now
                if last:
                    raise
        os.replace(tmp, path)

    def get(self, name: str) -> bytes | None:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            return None

    def sweep(self, older_than_seconds: float) -> int:
        if not self.root.is_dir():
            return 0
        cutoff = time.time() - older_than_seconds
        deleted = 0
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            written = folder.stat().st_mtime  # before this sweep's deletions touch it
            for path in folder.iterdir():
                try:
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        deleted += 1
                except FileNotFoundError:  # another process swept it first
                    continue
            if written < cutoff:  # nothing written to it lately: gone if now empty
                with contextlib.suppress(OSError):
                    folder.rmdir()
        return deleted


class S3Blobs:
    """Objects in an S3-compatible bucket through boto3 (credentials from boto3's usual chain: the
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` environment, a profile, an instance role)."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client, self.bucket = client, bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.description = f"s3://{bucket}/{self.prefix}"

    def put(self, name: str, content: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=content)

    def get(self, name: str) -> bytes | None:
        try:
            found = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)
        except self.client.exceptions.NoSuchKey:
            return None
        body: bytes = found["Body"].read()
        return body

    def sweep(self, older_than_seconds: float) -> int:
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than_seconds)
        old: list[dict[str, str]] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        ):
            old += [{"Key": o["Key"]} for o in page.get("Contents", []) if o["LastModified"] < cutoff]
        for start in range(0, len(old), 1000):  # DeleteObjects takes at most 1,000 keys
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": old[start : start + 1000]})
        return len(old)


@functools.lru_cache(maxsize=8)
def open_blobs(url: str, var_dir: Path, endpoint_url: str = "") -> Blobs:
    """The store ``TRIAGE_ATTACHMENTS_URL`` names: empty for ``var/attachments``, a path for another folder,
    ``s3://bucket/prefix`` for a bucket. One per process and setting (a boto3 client is thread-safe and
    costs tens of milliseconds to build)."""
    if not url:
        return LocalBlobs(var_dir / "attachments")
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        return LocalBlobs(Path(parts.path if parts.scheme else url))
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(
            f"TRIAGE_ATTACHMENTS_URL must be empty (var/attachments), a folder, or s3://bucket/prefix; got {url!r}"
        )
    try:
        import boto3
    except ImportError as exc:
        raise ConfigError(
            "TRIAGE_ATTACHMENTS_URL names an S3 bucket but boto3 is not installed; "
            "run `.venv/bin/pip install 'triagebot[s3]'`"
        ) from exc
    client = boto3.client("s3", endpoint_url=endpoint_url or None)
    return S3Blobs(client, parts.netloc, parts.path)
