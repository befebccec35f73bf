"""The evidence archive: each alerted document written as a WARC record (warcio).

With ``archive: {dir: PATH}``, :class:`Archive` writes one gzipped WARC/1.1 file per
document under ``PATH/YYYY/MM/DD/``:

* :meth:`Archive.write` — a document as fetched (:class:`~watchtower.models.FetchedDocument`:
  an article, a PDF, a watched page's answer) as a ``response`` record: the HTTP status
  line and response headers, then the payload, with ``WARC-Target-URI``, ``WARC-Date``
  (the fetch time), ``WARC-Payload-Digest`` and ``WARC-Block-Digest`` as
  ``sha256:<base32>`` (the WARC convention);
* :meth:`Archive.write_snapshot` — a page snapshot (the watched text) as a ``resource``
  record of ``text/plain; charset=utf-8``.

Each file starts with a ``warcinfo`` record. A file is written under a temporary name,
flushed to disk and then renamed, so a full disk never leaves half a record behind.

Both return an :class:`ArchiveOutcome`: the :class:`ArchiveRecord` — ``{"path",
"sha256", "fetched_at"}`` for the alert object, ``sha256`` the hex SHA-256 of the
payload — or a plain-words ``reason``. They never raise for a failed write (full disk,
permission denied, read-only file system): the failure is logged once per kind of
failure, at WARNING, until a write succeeds again. Writing does blocking file I/O and
an ``fsync``: callers on the event loop use :meth:`Archive.write_async` /
:meth:`Archive.write_snapshot_async`, which run it in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http
import io
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watchtower import __version__
from watchtower.models import FetchedDocument

if TYPE_CHECKING:  # warcio is imported by the first archive written
    from warcio.warcwriter import WARCWriter

log = logging.getLogger(__name__)

#: Response headers that describe the transfer, not the payload as stored.
_TRANSFER_HEADERS = frozenset(("transfer-encoding", "content-encoding", "content-length"))


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """Where an alert's document was archived: the alert object's ``archive`` value."""

    path: str
    sha256: str
    fetched_at: datetime

    def to_dict(self) -> dict[str, str]:
        """``{"path", "sha256", "fetched_at"}``, the time as ISO 8601 UTC."""
        return {
            "path": self.path,
            "sha256": self.sha256,
            "fetched_at": _iso(self.fetched_at),
        }


@dataclass(frozen=True, slots=True)
class ArchiveOutcome:
    """A written :class:`ArchiveRecord`, or the ``reason`` nothing was written."""

    record: ArchiveRecord | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.record is not None


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _iso(when: datetime) -> str:
    return _utc(when).isoformat().replace("+00:00", "Z")


def warc_digest(data: bytes) -> str:
    """``sha256:<base32>`` of ``data``, as WARC digest headers write it."""
    return "sha256:" + base64.b32encode(hashlib.sha256(data).digest()).decode("ascii")


def _status_line(status: int) -> str:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"{status} {phrase}".strip()


def _clean(value: str) -> str:
    return "".join(ch for ch in str(value) if ch.isprintable())


class Archive:
    """WARC files under one directory (created on first write). Safe to share between threads."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._failing: str | None = None

    # --- public ---------------------------------------------------------------------------

    def write(self, document: FetchedDocument) -> ArchiveOutcome:
        """Write ``document`` as a WARC ``response`` record; never raises for I/O errors."""
        payload = document.payload
        sha256 = hashlib.sha256(payload).hexdigest()
        headers = [(_clean(k), _clean(v)) for k, v in archive_headers(document).items()]
        from warcio.statusandheaders import StatusAndHeaders

        http_headers = StatusAndHeaders(_status_line(document.status), headers, protocol="HTTP/1.1")
        http_headers.compute_headers_buffer()
        block = http_headers.headers_buff + payload

        def build(writer: WARCWriter) -> Any:
            return writer.create_warc_record(
                document.url,
                "response",
                payload=io.BytesIO(payload),
                length=len(payload),
                http_headers=http_headers,
                warc_headers_dict=self._warc_headers(document.fetched_at, payload, block),
            )

        return self._write(document.url, sha256, document.fetched_at, build)

    def write_snapshot(self, url: str, snapshot: str, fetched_at: datetime) -> ArchiveOutcome:
        """Write a page snapshot (the watched text) as a WARC ``resource`` record."""
        payload = snapshot.encode("utf-8", "surrogatepass")
        sha256 = hashlib.sha256(payload).hexdigest()

        def build(writer: WARCWriter) -> Any:
            warc_headers = self._warc_headers(fetched_at, payload, payload)
            return writer.create_warc_record(
                url,
                "resource",
                payload=io.BytesIO(payload),
                length=len(payload),
                warc_content_type="text/plain; charset=utf-8",
                warc_headers_dict=warc_headers,
            )

        return self._write(url, sha256, fetched_at, build)

    async def write_async(self, document: FetchedDocument) -> ArchiveOutcome:
        """:meth:`write` in a worker thread, so the event loop never waits on the disk."""
        return await asyncio.to_thread(self.write, document)

    async def write_snapshot_async(
        self, url: str, snapshot: str, fetched_at: datetime
    ) -> ArchiveOutcome:
        """:meth:`write_snapshot` in a worker thread."""
        return await asyncio.to_thread(self.write_snapshot, url, snapshot, fetched_at)

    # --- internals ------------------------------------------------------------------------

    @staticmethod
    def _warc_headers(fetched_at: datetime, payload: bytes, block: bytes) -> dict[str, str]:
        return {
            "WARC-Date": _utc(fetched_at).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "WARC-Payload-Digest": warc_digest(payload),
            "WARC-Block-Digest": warc_digest(block),
        }

    def _path(self, url: str, sha256: str, fetched_at: datetime) -> Path:
        when = _utc(fetched_at)
        url_hash = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        name = f"{when:%Y%m%dT%H%M%S}Z-{url_hash}-{sha256[:16]}.warc.gz"
        return self.directory / f"{when:%Y}" / f"{when:%m}" / f"{when:%d}" / name

    def _write(
        self, url: str, sha256: str, fetched_at: datetime, build: Callable[[WARCWriter], Any]
    ) -> ArchiveOutcome:
        path = self._path(url, sha256, fetched_at)
        try:
            if not path.exists():  # the same document fetched the same second: written
                self._write_file(path, build)
        except OSError as exc:
            return self._failed(exc)
        with self._lock:
            if self._failing is not None:
                log.info("archive %s is writable again", self.directory)
                self._failing = None
        return ArchiveOutcome(ArchiveRecord(os.path.abspath(path), sha256, _utc(fetched_at)))

    def _write_file(self, path: Path, build: Callable[[WARCWriter], Any]) -> None:
        from warcio.warcwriter import WARCWriter

        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                writer = WARCWriter(fh, gzip=True, warc_version="1.1")
                info = {"software": f"Watchtower/{__version__}", "format": "WARC file version 1.1"}
                writer.write_record(writer.create_warcinfo_record(path.name, info))
                writer.write_record(build(writer))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def _failed(self, exc: OSError) -> ArchiveOutcome:
        where = exc.filename or self.directory
        reason = f"archive not written: {exc.strerror or type(exc).__name__} ({where})"
        kind = f"{exc.errno}:{self.directory}"
        with self._lock:
            first = self._failing != kind
            self._failing = kind
        if first:
            log.warning("%s; alerts go on without archive copies until it is fixed", reason)
        else:
            log.debug("%s", reason)
        return ArchiveOutcome(None, reason)


def archive_headers(document: FetchedDocument) -> Mapping[str, str]:
    """The response headers as archived: transfer headers dropped, the stored length."""
    headers = {k: v for k, v in document.headers.items() if k.lower() not in _TRANSFER_HEADERS}
    headers["content-length"] = str(len(document.payload))
    return headers
