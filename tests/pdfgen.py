"""Small PDFs written byte by byte for the tests: text pages, bombs, broken files.

:func:`make_pdf` lays out a valid PDF 1.4 file (one Helvetica font, one text stream per
page, a correct cross-reference table) so each hostile variant differs from a good file
in exactly one way.
"""

from __future__ import annotations

import functools
import io
import zlib
from collections.abc import Sequence


def _escape(text: str) -> bytes:
    raw = text.encode("latin-1", "replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _content(lines: Sequence[str]) -> bytes:
    ops = [b"BT /F1 11 Tf 14 TL 72 760 Td"]
    for line in lines:
        ops.append(b"(" + _escape(line) + b") Tj T*")
    ops.append(b"ET")
    return b"\n".join(ops)


def make_pdf(
    pages: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    compress: bool = True,
    extra_stream: bytes | None = None,
    xref_offset: int | None = None,
) -> bytes:
    """A PDF whose page ``i`` shows the lines ``pages[i]``.

    ``extra_stream`` replaces the first page's content stream with these raw
    FlateDecode bytes (a compression bomb); ``xref_offset`` writes a wrong
    ``startxref`` value (a broken cross-reference table).
    """
    n = len(pages)
    # Objects: 1 catalog, 2 pages, 3 font, 4 info, then (page, content) pairs.
    objects: dict[int, bytes] = {}
    kids = " ".join(f"{5 + 2 * i} 0 R" for i in range(n))
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[2] = f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode()
    objects[3] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    objects[4] = b"<< /Title (" + _escape(title or "") + b") >>"
    for i, lines in enumerate(pages):
        page, content = 5 + 2 * i, 6 + 2 * i
        objects[page] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content} 0 R >>"
        ).encode()
        if i == 0 and extra_stream is not None:
            data, filt = extra_stream, b" /Filter /FlateDecode"
        elif compress:
            data, filt = zlib.compress(_content(lines)), b" /Filter /FlateDecode"
        else:
            data, filt = _content(lines), b""
        objects[content] = (
            b"<< /Length " + str(len(data)).encode() + filt + b" >>\nstream\n" + data
            + b"\nendstream"
        )  # fmt: skip
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for num in sorted(objects):
        offsets[num] = out.tell()
        out.write(f"{num} 0 obj\n".encode() + objects[num] + b"\nendobj\n")
    xref = out.tell()
    size = max(objects) + 1
    out.write(f"xref\n0 {size}\n0000000000 65535 f \n".encode())
    for num in range(1, size):
        out.write(f"{offsets[num]:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {size} /Root 1 0 R /Info 4 0 R >>\n".encode())
    out.write(f"startxref\n{xref if xref_offset is None else xref_offset}\n%%EOF\n".encode())
    return out.getvalue()


@functools.cache
def zlib_bomb(size: int = 1024**3) -> bytes:
    """``size`` zero bytes as a zlib stream (1 GiB → about 1 MB), built in well under a
    second: one fully flushed deflate block of 16 MiB of zeros repeated, then the end
    block and the Adler-32 of the whole."""
    chunk = bytes(16 * 1024 * 1024)
    count, rest = divmod(size, len(chunk))
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)  # independent of history
    tail = comp.compress(bytes(rest)) + comp.flush()
    adler = 1
    for _ in range(count):
        adler = zlib.adler32(chunk, adler)
    adler = zlib.adler32(bytes(rest), adler)
    return b"\x78\xda" + block * count + tail + adler.to_bytes(4, "big")


def report_pdf(paragraphs: Sequence[str], *, title: str = "Report") -> bytes:
    """A one-page-per-paragraph PDF, lines wrapped at about 80 characters."""
    pages = []
    for paragraph in paragraphs:
        lines, line = [], ""
        for word in paragraph.split():
            if len(line) + len(word) > 80:
                lines.append(line)
                line = ""
            line = f"{line} {word}".strip()
        lines.append(line)
        pages.append(lines)
    return make_pdf(pages, title=title)
