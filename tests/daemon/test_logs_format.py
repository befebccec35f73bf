"""Log lines as an operator reads them: plain stderr, journald form, redaction."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from watchtower.logs import (
    NOISY_LOGGERS,
    RedactingFilter,
    escape_line,
    forget_secrets,
    journal_stream,
    redact,
    redact_url,
    scrub,
    setup_logging,
)

PLAIN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    try:
        yield
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)
        for name, lvl in noisy.items():
            logging.getLogger(name).setLevel(lvl)
        logging.captureWarnings(False)
        forget_secrets()


def _lines(buf: io.StringIO) -> list[str]:
    return buf.getvalue().splitlines()


def test_plain_form_has_utc_timestamp_level_logger() -> None:
    buf = io.StringIO()
    setup_logging("info", stream=buf, journal=False)
    logging.getLogger("watchtower.pipeline").info("polled %s: %d new", "Example feed", 3)
    logging.getLogger("watchtower.pipeline").debug("hidden at INFO")
    (line,) = _lines(buf)
    assert PLAIN.match(line), line
    assert line.endswith("INFO watchtower.pipeline: polled Example feed: 3 new")


def test_journal_form_has_priority_and_no_timestamp() -> None:
    buf = io.StringIO()
    setup_logging("DEBUG", stream=buf, journal=True)
    lg = logging.getLogger("watchtower.daemon")
    lg.debug("d")
    lg.info("i")
    lg.warning("w")
    lg.error("e")
    lg.critical("c")
    assert _lines(buf) == [
        "<7>watchtower.daemon: d",
        "<6>watchtower.daemon: i",
        "<4>watchtower.daemon: w",
        "<3>watchtower.daemon: e",
        "<2>watchtower.daemon: c",
    ]


def test_journal_detected_from_journal_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open(tmp_path / "stderr.log", "w", encoding="utf-8") as out:
        st = os.fstat(out.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert journal_stream(out)
        setup_logging(stream=out)
        logging.getLogger("watchtower").warning("journal")
        # A stream that is not the journal (redirected stderr inherits the variable).
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")
        assert not journal_stream(out)
        setup_logging(stream=out)
        logging.getLogger("watchtower").warning("plain")
    lines = (tmp_path / "stderr.log").read_text().splitlines()
    assert lines[0] == "<4>watchtower: journal"
    assert PLAIN.match(lines[1]) and lines[1].endswith("watchtower: plain")


@pytest.mark.parametrize("value", ["", "garbage", "1:x", "12"])
def test_malformed_journal_stream_means_plain(value: str) -> None:
    assert not journal_stream(sys.stderr, {"JOURNAL_STREAM": value})


def test_real_stderr_in_a_subprocess(tmp_path: Path) -> None:
    """The daemon's own default: stderr, journald form when JOURNAL_STREAM matches."""
    err = tmp_path / "err.log"
    code = (
        "import logging, os, sys\n"
        "st = os.fstat(2)\n"
        "os.environ['JOURNAL_STREAM'] = f'{st.st_dev}:{st.st_ino}'\n"
        "from watchtower.logs import setup_logging\n"
        "setup_logging('INFO')\n"
        "logging.getLogger('watchtower.daemon').info('started')\n"
    )
    with open(err, "w", encoding="utf-8") as fh:
        subprocess.run([sys.executable, "-c", code], stderr=fh, check=True, timeout=30)
    assert err.read_text() == "<6>watchtower.daemon: started\n"


def test_traceback_is_one_line() -> None:
    buf = io.StringIO()
    setup_logging(stream=buf, journal=True)
    try:
        raise RuntimeError("first line\nsecond line")
    except RuntimeError:
        logging.getLogger("watchtower.pipeline").exception("poll failed for %s", "X")
    (line,) = _lines(buf)
    assert line.startswith("<3>watchtower.pipeline: poll failed for X | Traceback")
    assert "RuntimeError: first line\\nsecond line" in line


def test_hostile_text_cannot_forge_lines_or_escapes() -> None:
    buf = io.StringIO()
    setup_logging(stream=buf, journal=True)
    title = "Breaking\n<0>watchtower.daemon: all secrets follow\x1b[2J\r"
    logging.getLogger("watchtower.feed").info("new item %r %s", "x", title)
    (line,) = _lines(buf)
    assert line.startswith("<6>watchtower.feed: new item 'x' Breaking\\n<0>")
    assert "\x1b" not in line and "\\x1b[2J\\r" in line


def test_escape_line_keeps_tabs_and_unicode() -> None:
    assert escape_line("a\tb — 북한\n") == "a\tb — 북한\\n"


def test_secrets_redacted_in_message_args_and_exceptions() -> None:
    buf = io.StringIO()
    setup_logging(stream=buf, journal=False)
    redact("whsec_c2VjcmV0LXNlY3JldA==", SecretStr("p@ss word!"), None, "")
    lg = logging.getLogger("watchtower.notify")
    lg.info("signing with %s", "whsec_c2VjcmV0LXNlY3JldA==")
    lg.warning("inline whsec_c2VjcmV0LXNlY3JldA== in the format string")
    lg.info("store postgresql://wt:%s@db/wt", "p%40ss%20word%21")  # percent-encoded form
    lg.info("dict arg %s", {"password": "p@ss word!"})
    try:
        raise ValueError("login failed for password p@ss word!")
    except ValueError:
        lg.exception("smtp")
    text = buf.getvalue()
    assert "c2VjcmV0" not in text
    assert "p@ss" not in text and "p%40ss" not in text
    assert text.count("***") == 6  # the traceback shows the raising line and the message
    assert len(_lines(buf)) == 5


def test_redaction_of_the_longest_match_first() -> None:
    redact("abcd", "abcdefgh")
    assert scrub("x abcdefgh y abcd") == "x *** y ***"


def test_filter_works_on_other_handlers() -> None:
    """The filter makes a record safe for any handler, e.g. pytest's caplog."""
    redact("topsecret-token")
    record = logging.LogRecord(
        "w", logging.INFO, __file__, 1, "token=%s n=%d", ("topsecret-token", 3), None
    )
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "token=*** n=3"
    # Nothing to redact: the record is left untouched (lazy formatting keeps working).
    clean = logging.LogRecord("w", logging.INFO, __file__, 1, "n=%d", (3,), None)
    RedactingFilter().filter(clean)
    assert clean.msg == "n=%d" and clean.args == (3,)


def test_setup_twice_keeps_one_handler_and_quiets_noisy_libraries() -> None:
    buf = io.StringIO()
    setup_logging(stream=buf, journal=False)
    setup_logging("INFO", stream=buf, journal=False)
    logging.getLogger("watchtower").info("once")
    logging.getLogger("httpx").info("HTTP Request: GET https://x/?token=abc")
    assert len(_lines(buf)) == 1


def test_unknown_level_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        setup_logging("LOUD", stream=io.StringIO())


def test_store_url_password_is_redacted() -> None:
    redact_url("postgresql+psycopg://wt:s3cr%40t-pw@db.internal:5432/wt")
    redact_url("sqlite:////var/lib/watchtower/watchtower.db")  # no password: nothing to do
    redact_url(None)
    assert scrub("connect to wt:s3cr%40t-pw@db failed (password s3cr@t-pw)") == (
        "connect to wt:***@db failed (password ***)"
    )
    assert scrub("/var/lib/watchtower/watchtower.db") == "/var/lib/watchtower/watchtower.db"
