"""`watchtower demo`: bundled sample feeds, seeds and config, and the demo run itself."""

from __future__ import annotations

import fnmatch
import io
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import feedparser
import pytest
from ruamel.yaml import YAML

from tests.deploy.test_deploy_memory import FILTER, WX_FILTER_WORKS_HERE
from tests.support import ROOT
from watchtower import demo

WIRE_TITLES = (
    "China sends dozens of North Korean escapees back across the border",
    "China returns dozens of North Korean escapees across the border",
)
OFF_TOPIC = (
    "Busan film festival",
    "central banks hold rates",
    "cycle lanes",
    "Heat warnings",
    "Harbour FC",
)


def _bundled(name: str) -> bytes:
    return demo.demo_data().joinpath(name).read_bytes()


def test_bundled_seeds_are_the_repository_seeds() -> None:
    seeds = ROOT / "seeds"
    if not seeds.is_dir():
        pytest.skip("not a checkout")
    for path in sorted(seeds.iterdir()):
        assert _bundled(path.name) == path.read_bytes(), f"demo copy of {path.name} is stale"


def test_copy_seeds(tmp_path: Path) -> None:
    names = demo.copy_seeds(tmp_path / "seeds")
    assert len(names) == 5
    assert sorted(p.name for p in (tmp_path / "seeds").iterdir()) == sorted(names + ["seeds.yaml"])


def test_every_bundled_file_is_in_the_wheel() -> None:
    """pyproject's package data is `demo/*`: files directly in demo/, no subfolders."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["watchtower"]
    needed = ["demo/" + demo.CONFIG_TEMPLATE, "demo/" + demo.SEEDS_METADATA]
    needed += ["demo/" + name for name, _ in demo.FEEDS.values()]
    seeds = YAML(typ="safe").load(_bundled(demo.SEEDS_METADATA).decode())
    needed += ["demo/" + name for name in seeds]
    for rel in needed:
        assert "/" not in rel.removeprefix("demo/")
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), rel
        assert (ROOT / "src" / "watchtower" / rel).is_file(), rel


@pytest.mark.parametrize("route", sorted(demo.FEEDS))
def test_sample_feeds_are_well_formed(route: str) -> None:
    name = demo.FEEDS[route][0]
    parsed = feedparser.parse(io.BytesIO(_bundled(name)))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert "(demo)" in parsed.feed.title
    assert len(parsed.entries) == 4
    for entry in parsed.entries:
        assert entry.title and entry.summary and entry.id
        host = entry.link.split("/")[2]
        assert host.endswith(".example"), entry.link  # invented outlets only


def test_the_same_story_is_carried_by_two_outlets() -> None:
    titles = {
        name: {e.title for e in feedparser.parse(io.BytesIO(_bundled(name))).entries}
        for name, _ in demo.FEEDS.values()
    }
    assert WIRE_TITLES[0] in titles["korea-rights-monitor.xml"]
    assert WIRE_TITLES[1] in titles["asia-policy-wire.atom"]


def test_serve_feeds_on_loopback() -> None:
    with demo.serve_feeds() as base:
        assert base.startswith("http://127.0.0.1:")
        for route, (name, ctype) in demo.FEEDS.items():
            with urllib.request.urlopen(base + route, timeout=5) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith(ctype)
                assert resp.read() == _bundled(name)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "/../../etc/passwd", timeout=5)
        assert err.value.code == 404
        err.value.close()


def test_demo_config_is_valid_and_only_contacts_loopback(tmp_path: Path) -> None:
    config_mod = pytest.importorskip("watchtower.config")
    demo.copy_seeds(tmp_path / "seeds")
    path = demo.write_config(tmp_path, "http://127.0.0.1:8999")
    config = config_mod.load_config(path)
    assert config.fetch.allow_private_addresses is True
    assert [s.url.split("/")[2] for s in config.sources] == ["127.0.0.1:8999"] * 3
    assert config.baseline.seeds == tmp_path / "seeds"
    assert config.store.endswith(f"{tmp_path}/watchtower.db")
    assert not config.notify.webhooks


DEMO = r"""
import io, sys
from pathlib import Path
from watchtower.demo import run_demo
buf = io.StringIO()
code = run_demo(buf, workdir=Path(sys.argv[1]))
sys.stdout.write(buf.getvalue())
sys.exit(code)
"""


def _run_demo(workdir: Path) -> tuple[int, str]:
    """run_demo in a child Python, under the MemoryDenyWriteExecute filter where it works.

    The pipeline's parse workers are child processes: they inherit the filter too.
    """
    prelude = FILTER if WX_FILTER_WORKS_HERE else ""
    cmd = [sys.executable, "-c", prelude + DEMO, str(workdir)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=55, cwd=ROOT)
    if done.returncode == 77:  # seccomp not allowed here: run without the filter
        cmd[2] = DEMO
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=55, cwd=ROOT)
    return done.returncode, done.stdout + done.stderr


def test_run_demo_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("watchtower.runtime")
    cli = pytest.importorskip("watchtower.cli")
    digest = pytest.importorskip("watchtower.notify.digest")
    if not hasattr(cli, "format_alerts") or not hasattr(digest, "send_digest"):
        pytest.skip("watchtower.cli.format_alerts / notify.digest.send_digest not there yet")
    code, text = _run_demo(tmp_path)
    assert code == 0, text
    assert "Polled 3 sources" in text and "0 errors" in text
    alerts = text.split("Alerts (newest first)", 1)[1].split("Digest preview", 1)[0]
    # The wire story is one alert listing both outlets.
    wire = [t for t in WIRE_TITLES if t in alerts]
    assert len(wire) == 1, alerts
    assert "Korea Rights Monitor:" in alerts and "Asia Policy Wire:" in alerts
    assert "UN rapporteur asks Beijing" in alerts
    assert alerts.count("      why: ") >= 4  # five on-subject stories, one of them twice
    for title in OFF_TOPIC:
        assert title not in alerts, title
    preview = text.split("Digest preview (not sent)", 1)[1]
    assert "Subject:" in preview
    assert (tmp_path / "watchtower.db").is_file()  # kept because workdir was given
