"""`watchtower run --once` loads only what a run needs.

A run with no sources and a warm baseline cache must not import the web stack, the
email and Apprise stacks, the page / PDF / article parsers, the feedback model or the
lemmatisers or the WARC writer, nor Alembic on a store whose schema is current, nor the async HTTP
machinery when nothing was fetched or delivered: together they were most
of its start-up time. The garbage collector, paused while start-up imports, runs again
once the command has loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

NOT_NEEDED = (
    "aiosmtplib",
    "alembic",
    "anyio._backends._asyncio",  # closing an HTTP pool that never sent a request
    "apprise",
    "bs4",
    "jinja2",
    "lxml",
    "opencc",
    "pypdf",
    "scipy",
    "simplemma",
    "starlette",
    "Stemmer",
    "trafilatura",
    "uvicorn",
    "warcio",  # the first archive written imports it
    "watchtower.feedback_model",
    "watchtower.sources.page",
    "watchtower.web.server",
)

PROBE = """
import gc, json, sys
from watchtower.__main__ import main
sys.argv = ["watchtower", "run", "--once", "--config", sys.argv[1]]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
assert gc.isenabled(), "the collector paused for start-up runs again"
print(json.dumps(sorted(sys.modules)))
"""


def _run_once_modules(config: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    names = set(json.loads(done.stdout))
    return names | {name.split(".")[0] for name in names}


def test_warm_run_once_without_sources_imports_only_what_it_needs(tmp_path: Path) -> None:
    config = tmp_path / "watchtower.yaml"
    config.write_text(
        f"store: sqlite:///{tmp_path}/wt.db\n"
        f"baseline:\n  seeds: {ROOT / 'seeds'}\n"
        "  entities:\n    North Korea: [DPRK, Pyongyang]\n"
        "sources: []\n",
        encoding="utf-8",
    )
    _run_once_modules(config)  # creates the store and the baseline cache
    loaded = _run_once_modules(config)
    assert sorted(loaded & set(NOT_NEEDED)) == []
