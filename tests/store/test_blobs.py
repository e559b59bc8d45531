"""Attachment bytes outside Redis: a folder under var/ by default, an S3-compatible bucket by setting — here a
real S3 HTTP server (moto's) on loopback, spoken to by boto3 as a bucket in production would be."""

from __future__ import annotations

import os
import time
from pathlib import Path

import boto3
import pytest

from bot.errors import ConfigError
from bot.store.blobs import Blobs, LocalBlobs, S3Blobs, blob_name, open_blobs

DAY = 86400


@pytest.fixture
def bucket(s3_endpoint: str, s3_env: None, request: pytest.FixtureRequest) -> str:
    name = "triage-" + request.node.name.replace("_", "-").lower()[:40].strip("-")
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Blobs:
    if request.param == "local":
        return LocalBlobs(tmp_path / "attachments")
    endpoint = request.getfixturevalue("s3_endpoint")
    name = request.getfixturevalue("bucket")
    return S3Blobs(boto3.client("s3", endpoint_url=endpoint), name, "triage/attachments")


def test_bytes_round_trip_and_a_missing_object_is_none(blobs: Blobs) -> None:
    name = blob_name("web:c1", "a1b2")
    content = bytes(range(256)) * 4096  # 1 MiB, every byte value
    blobs.put(name, content)
    assert blobs.get(name) == content
    assert blobs.get(blob_name("web:c1", "nothere")) is None
    blobs.put(name, b"second")  # an overwrite is whole
    assert blobs.get(name) == b"second"


def test_the_sweep_deletes_what_is_past_retention_and_keeps_the_rest(blobs: Blobs) -> None:
    old, new = blob_name("c-old", "a1"), blob_name("c-new", "a2")
    blobs.put(old, b"old")
    if isinstance(blobs, LocalBlobs):
        past = time.time() - 91 * DAY
        os.utime(blobs.root / old, (past, past))
        os.utime((blobs.root / old).parent, (past, past))
        assert blobs.sweep(90 * DAY) == 1
        assert not (blobs.root / old).parent.exists()  # its emptied folder too
    else:
        # S3 keeps LastModified to the second, and nothing can set it back: the two objects are written two
        # seconds apart and the sweep's cutoff falls midway between their stamps, a second from each. A cutoff
        # of "1 s ago" failed when the new object's stamp, truncated to its second, was already over 1 s old
        # at the sweep (a loaded CI machine).
        time.sleep(2.1)
        blobs.put(new, b"new")
        assert isinstance(blobs, S3Blobs)
        stamps = [
            blobs.client.head_object(Bucket=blobs.bucket, Key=blobs.prefix + name)["LastModified"].timestamp()
            for name in (old, new)
        ]
        assert stamps[1] - stamps[0] >= 2
        assert blobs.sweep(time.time() - sum(stamps) / 2) == 1
    blobs.put(new, b"new")
    assert blobs.get(old) is None and blobs.get(new) == b"new"
    assert blobs.sweep(90 * DAY) == 0


def test_names_chosen_by_clients_never_reach_a_path(tmp_path: Path) -> None:
    blobs = LocalBlobs(tmp_path / "attachments")
    for cid in ("../../etc", "wecom:corp/../../x", "\x00"):
        blobs.put(blob_name(cid, "a1"), b"x")
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert len(written) == 3
    assert all(p.parts[0] == "attachments" and len(p.parts) == 3 for p in written)


def test_the_setting_chooses_the_store(tmp_path: Path, s3_endpoint: str, s3_env: None) -> None:
    default = open_blobs("", tmp_path)
    assert isinstance(default, LocalBlobs) and default.root == tmp_path / "attachments"
    folder = open_blobs(str(tmp_path / "elsewhere"), tmp_path)
    assert isinstance(folder, LocalBlobs) and folder.root == tmp_path / "elsewhere"
    bucket = open_blobs("s3://my-bucket/some/prefix/", tmp_path, s3_endpoint)
    assert isinstance(bucket, S3Blobs) and bucket.description == "s3://my-bucket/some/prefix/"


@pytest.mark.parametrize("url", ["ftp://host/x", "s3://", "redis://localhost/0"])
def test_an_unusable_setting_is_refused_saying_what_is_accepted(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="s3://bucket/prefix"):
        open_blobs(url, tmp_path)
