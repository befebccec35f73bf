"""MemoryDenyWriteExecute=yes: Watchtower's code runs without writable+executable memory.

systemd implements the option with a seccomp filter that refuses ``mmap`` with both
PROT_WRITE and PROT_EXEC and any ``mprotect``/``pkey_mprotect`` adding PROT_EXEC. The
test installs the same filter in a child Python (x86-64 Linux only), proves it bites,
then imports and exercises every compiled dependency the service uses. A dependency
that needs a JIT or executable stack would fail here instead of on a user's server.
tests/deploy/test_deploy_demo.py runs the whole pipeline (``watchtower demo``) under the same
filter.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from tests.support import ROOT

FILTER = r"""
import ctypes, mmap, struct, sys

def install_wx_filter():
    code = []
    def op(c, jt, jf, k):
        code.append(struct.pack("HBBI", c, jt, jf, k))
    LD, JEQ, RET, AND = 0x20, 0x15, 0x06, 0x54
    ALLOW, EPERM = 0x7FFF0000, 0x00050000 | 1
    op(LD, 0, 0, 4)              # 0: seccomp_data.arch
    op(JEQ, 1, 0, 0xC000003E)    # 1: x86-64?
    op(RET, 0, 0, ALLOW)         # 2
    op(LD, 0, 0, 0)              # 3: seccomp_data.nr
    op(JEQ, 3, 0, 9)             # 4: mmap -> 8
    op(JEQ, 5, 0, 10)            # 5: mprotect -> 11
    op(JEQ, 4, 0, 329)           # 6: pkey_mprotect -> 11
    op(RET, 0, 0, ALLOW)         # 7
    op(LD, 0, 0, 32)             # 8: args[2] (prot)
    op(AND, 0, 0, 6)             # 9: PROT_WRITE|PROT_EXEC
    op(JEQ, 4, 3, 6)             # 10: both -> 15 deny, else 14
    op(LD, 0, 0, 32)             # 11: args[2] (prot)
    op(AND, 0, 0, 4)             # 12: PROT_EXEC
    op(JEQ, 1, 0, 4)             # 13: -> 15 deny
    op(RET, 0, 0, ALLOW)         # 14
    op(RET, 0, 0, EPERM)         # 15
    buf = ctypes.create_string_buffer(b"".join(code))

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    prog = Prog(len(code), ctypes.addressof(buf))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        sys.exit(77)
    if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
        sys.exit(77)

install_wx_filter()
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
except PermissionError:
    pass
else:
    print("filter not enforced")
    sys.exit(3)
"""

WORKLOAD = r"""
import asyncio, io, json, sqlite3, ssl, zlib

import brotli, feedparser, jinja2, lxml.etree, lxml.html, nh3, psycopg, pydantic
import sqlalchemy, trafilatura, wordfreq
from bs4 import BeautifulSoup
from prometheus_client import CollectorRegistry, Counter, generate_latest
from ruamel.yaml import YAML

import watchtower.logs, watchtower.metrics, watchtower.systemd

rss = b'''<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>North Korea &amp; China</title><link>https://example.org/a</link>
<description>&lt;p&gt;Forced repatriation &lt;script&gt;x&lt;/script&gt;&lt;/p&gt;</description>
</item></channel></rss>'''
parsed = feedparser.parse(io.BytesIO(rss))
assert parsed.entries[0].title == "North Korea & China"

html = "<html><body><main><h1>Title</h1>" + "<p>Human rights in the DPRK. </p>" * 40
html += "</main></body></html>"
assert lxml.html.fromstring(html).xpath("//h1")[0].text == "Title"
lxml.etree.fromstring(b"<a><b>1</b></a>")
assert "Human rights" in (trafilatura.extract(html) or "")
assert BeautifulSoup(html, "lxml").h1.text == "Title"
assert "<script>" not in nh3.clean("<p>ok</p><script>x</script>")

class M(pydantic.BaseModel):
    n: int
assert M.model_validate({"n": "3"}).n == 3

engine = sqlalchemy.create_engine("sqlite://")
with engine.begin() as conn:
    assert conn.execute(sqlalchemy.text("select 1")).scalar() == 1
sqlite3.connect(":memory:").execute("create virtual table t using fts5(x)")
assert psycopg.__version__
assert brotli.decompress(brotli.compress(b"x" * 1000)) == b"x" * 1000
assert zlib.decompressobj(47).decompress(zlib.compress(b"y" * 100), 1000) == b"y" * 100
assert wordfreq.zipf_frequency("korea", "en") > 0
ssl.create_default_context()
assert jinja2.Environment(autoescape=True).from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
YAML(typ="safe").load("a: 1")
reg = CollectorRegistry()
Counter("c", "c", registry=reg).inc()
assert b"c_total 1.0" in generate_latest(reg)

import pypdf
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

pdf = pypdf.PdfWriter()
pdf.add_blank_page(612, 792)
pdf.encrypt(user_password="", owner_password="o", algorithm="AES-256")  # via cryptography
buf = io.BytesIO()
pdf.write(buf)
reader = pypdf.PdfReader(io.BytesIO(buf.getvalue()))
assert reader.is_encrypted and reader.decrypt("") and len(reader.pages) == 1
warc = io.BytesIO()
writer = WARCWriter(warc, gzip=True, warc_version="1.1")
writer.write_record(writer.create_warc_record(
    "https://example.org/a", "response", payload=io.BytesIO(b"body"), length=4,
    http_headers=StatusAndHeaders("200 OK", [("content-type", "text/plain")], "HTTP/1.1"),
))
warc.seek(0)
assert [r.rec_type for r in ArchiveIterator(warc)] == ["response"]

async def main():
    await asyncio.sleep(0)
    return json.dumps({"ok": True})
assert asyncio.run(main()) == '{"ok": true}'
print("workload ok")
"""


WX_FILTER_WORKS_HERE = sys.platform == "linux" and platform.machine() == "x86_64"


@pytest.mark.skipif(
    not WX_FILTER_WORKS_HERE, reason="the seccomp filter here is written for x86-64 Linux"
)
def test_dependencies_run_without_writable_executable_memory() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FILTER + WORKLOAD],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    if done.returncode == 77:
        pytest.skip("seccomp filters are not allowed here")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "workload ok" in done.stdout
