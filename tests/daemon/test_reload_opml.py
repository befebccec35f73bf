"""A hostile OPML file: `check` reports it with file and line, and a SIGHUP that loads
it is refused with systemd back at READY=1 and a STATUS message."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.daemon.test_daemon_lifecycle import (
    Daemon,
    accept,
    daemons,  # noqa: F401  (fixture)
    wait_for,
    write_config,
)
from tests.e2e.test_e2e_run_once import IRRELEVANT, rss, watchtower
from tests.support import LoopbackHTTP, Response

LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE opml [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<opml version="2.0"><head><title>&lol4;</title></head>
<body><outline text="&lol4;" xmlUrl="http://127.0.0.1:9/x.xml"/></body></opml>
"""


def _good_opml(url: str) -> str:
    return (
        '<?xml version="1.0"?><opml version="2.0"><head><title>t</title></head><body>'
        f'<outline text="Listed" xmlUrl="{url}"/></body></opml>\n'
    )


def _config(tmp_path: Path, server: LoopbackHTTP) -> Path:
    config = write_config(tmp_path, server, [("A", "/a.xml")])
    config.write_text(
        config.read_text().replace("sources:\n", "sources:\n  - {opml: feeds.opml, every: 2s}\n")
    )
    return config


def test_check_fails_on_an_entity_opml_with_file_and_line(
    http_server: LoopbackHTTP, tmp_path: Path
) -> None:
    config = _config(tmp_path, http_server)
    opml = tmp_path / "feeds.opml"
    opml.write_text(_good_opml(http_server.url("/listed.xml")))
    ok = watchtower("check", "--config", str(config))
    assert ok.returncode == 0, ok.stderr
    opml.write_text(LAUGHS)
    bad = watchtower("check", "--config", str(config))
    assert bad.returncode == 2
    assert f"{opml}:3: OPML declares XML entities" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.timeout(120)
def test_sighup_with_a_hostile_opml_returns_to_ready_with_a_status(
    http_server: LoopbackHTTP,
    tmp_path: Path,
    daemons: list[Daemon],  # noqa: F811
) -> None:
    feed = Response(200, {"Content-Type": "application/rss+xml"}, rss(IRRELEVANT, "x"))
    http_server.routes["/a.xml"] = feed
    http_server.routes["/listed.xml"] = feed
    http_server.routes["/hook"] = accept
    config = _config(tmp_path, http_server)
    opml = tmp_path / "feeds.opml"
    opml.write_text(_good_opml(http_server.url("/listed.xml")))
    daemon = Daemon(config, tmp_path)
    daemons.append(daemon)
    daemon.wait_notify("READY=1")
    wait_for(lambda: http_server.requests_to("/listed.xml"), 30, "OPML feed polled", daemon)

    opml.write_text(LAUGHS)
    daemon.messages.clear()
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_notify("RELOADING=1")
    daemon.wait_notify("READY=1")
    ready = next(m for m in daemon.messages if "READY=1" in m)
    assert "STATUS=reload refused" in ready
    seen = len(http_server.requests_to("/listed.xml"))
    wait_for(
        lambda: len(http_server.requests_to("/listed.xml")) > seen,
        20,
        "the previous config still polling",
        daemon,
    )
    assert daemon.stop() == 0
    err = daemon.stderr()
    assert "Task exception was never retrieved" not in err
    assert f"reload refused: {opml}:3: OPML declares XML entities" in err
