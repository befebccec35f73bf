"""The evidence archive: WARC records read back with warcio; failures reported, never raised."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from watchtower.archive import Archive, ArchiveRecord, warc_digest
from watchtower.models import FetchedDocument

WHEN = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
PDF = b"%PDF-1.4\n" + os.urandom(3000) + b"\n%%EOF\n"


def document(payload: bytes = PDF, **kw: Any) -> FetchedDocument:
    headers = {
        "content-type": "application/pdf",
        "etag": '"v7"',
        "last-modified": "Tue, 03 Mar 2026 10:00:00 GMT",
        "content-encoding": "gzip",  # decoded before storing: must not be archived
        "content-length": "17",
    }
    fields: dict[str, Any] = {
        "url": "https://ohchr.example/docs/report.pdf",
        "status": 200,
        "headers": headers,
        "payload": payload,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "fetched_at": WHEN,
    }
    fields.update(kw)
    return FetchedDocument(**fields)


def records(path: str) -> list[tuple[str, dict[str, str], Any, bytes]]:
    out = []
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh):
            headers = dict(record.rec_headers.headers)
            out.append(
                (record.rec_type, headers, record.http_headers, record.content_stream().read())
            )
    return out


def test_response_record_reads_back_with_url_headers_and_digest(tmp_path: Path) -> None:
    outcome = Archive(tmp_path / "archive").write(document())
    assert outcome.ok and outcome.reason is None
    record = outcome.record
    assert isinstance(record, ArchiveRecord)
    assert record.sha256 == hashlib.sha256(PDF).hexdigest()
    assert record.to_dict() == {
        "path": record.path,
        "sha256": record.sha256,
        "fetched_at": "2026-03-04T05:06:07.890123Z",
    }
    path = Path(record.path)
    assert path.is_absolute() and path.exists() and path.name.endswith(".warc.gz")
    assert path.parent == tmp_path / "archive" / "2026" / "03" / "04"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]
    (info_type, _, _, _), (rec_type, warc, http, payload) = records(record.path)
    assert info_type == "warcinfo" and rec_type == "response"
    assert warc["WARC-Target-URI"] == "https://ohchr.example/docs/report.pdf"
    assert warc["WARC-Date"] == "2026-03-04T05:06:07.890123Z"
    assert warc["WARC-Payload-Digest"] == warc_digest(PDF)
    assert warc["WARC-Block-Digest"].startswith("sha256:")
    assert http.get_statuscode() == "200" and http.protocol == "HTTP/1.1"
    assert http.get_header("content-type") == "application/pdf"
    assert http.get_header("etag") == '"v7"'
    assert http.get_header("content-encoding") is None
    assert http.get_header("content-length") == str(len(PDF))
    assert payload == PDF and hashlib.sha256(payload).hexdigest() == record.sha256


def test_snapshot_is_a_resource_record(tmp_path: Path) -> None:
    snapshot = "Press releases\nForced repatriation of 60 escapees — UN experts\n\tlinks"
    outcome = Archive(tmp_path).write_snapshot("https://un.example/press", snapshot, WHEN)
    assert outcome.record is not None
    (_, _, _, _), (rec_type, warc, http, payload) = records(outcome.record.path)
    assert rec_type == "resource" and http is None
    assert warc["Content-Type"] == "text/plain; charset=utf-8"
    assert warc["WARC-Target-URI"] == "https://un.example/press"
    assert payload.decode("utf-8") == snapshot
    assert outcome.record.sha256 == hashlib.sha256(payload).hexdigest()


def test_write_async_runs_in_a_thread(tmp_path: Path) -> None:
    outcome = asyncio.run(Archive(tmp_path).write_async(document(status=404)))
    assert outcome.record is not None
    (_, _, _, _), (_, _, http, _) = records(outcome.record.path)
    assert http.statusline == "404 Not Found"


@pytest.fixture
def read_only_dir() -> Iterator[str]:
    """A directory this process cannot write to (as root: with the effective uid of nobody)."""
    directory = tempfile.mkdtemp(prefix="wt-archive-ro-")
    os.chmod(directory, 0o555)
    try:
        yield directory
    finally:
        os.chmod(directory, 0o755)
        shutil.rmtree(directory)


def test_read_only_directory_is_reported_once_and_not_raised(
    read_only_dir: str, caplog: pytest.LogCaptureFixture
) -> None:
    archive = Archive(Path(read_only_dir) / "archive")
    caplog.set_level(logging.DEBUG, logger="watchtower.archive")
    root = os.geteuid() == 0
    if root:
        os.seteuid(65534)  # root ignores permission bits; nobody does not
    try:
        first = archive.write(document())
        second = archive.write(document(url="https://ohchr.example/other.pdf"))
        third = archive.write(document())
    finally:
        if root:
            os.seteuid(0)
    assert first.record is None and second.record is None and third.record is None
    assert first.reason is not None and first.reason.startswith("archive not written:")
    assert "Permission denied" in first.reason and read_only_dir in first.reason
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "a lasting failure is logged once"
    assert os.listdir(read_only_dir) == []
    assert third.reason == first.reason


def test_path_under_a_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    outcome = Archive(tmp_path / "file" / "archive").write(document())
    assert outcome.record is None
    assert outcome.reason is not None and "Not a directory" in outcome.reason


FULL_DISK = """
import json, os, resource, signal, sys
from datetime import UTC, datetime
from watchtower.archive import Archive
from watchtower.models import FetchedDocument
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # files cannot grow past 4 kB
payload = os.urandom(100_000)
doc = FetchedDocument("https://e.example/a", 200, {}, payload, "", datetime.now(UTC))
outcome = Archive(sys.argv[1]).write(doc)
print(json.dumps({"ok": outcome.ok, "reason": outcome.reason}))
"""


def test_full_disk_is_reported_and_leaves_no_partial_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is False
    assert result["reason"].startswith("archive not written: File too large")
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []
