"""The health and Apprise keys: defaults, per-source overrides, the check interval, masking."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from watchtower import health
from watchtower.config import load_config
from watchtower.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wt.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_defaults_overrides_and_check_interval(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
            service: {report_failing_after: 3s, quiet_after: 6s}
            sources:
              - {name: A, feed: "https://a.example.org/feed.xml"}
              - {name: B, feed: "https://b.example.org/feed.xml", quiet_after: 30d,
                 report_failing_after: 2h}
            """,
        )
    )
    limits = health.limits_by_source(config)
    assert limits["A"] == health.Limits(timedelta(seconds=3), timedelta(seconds=6))
    assert limits["B"] == health.Limits(timedelta(hours=2), timedelta(days=30))
    assert health.check_interval(config) == timedelta(seconds=1.5)

    plain = load_config(write(tmp_path, 'sources: [{name: A, feed: "https://a.example.org/f"}]'))
    assert plain.service.quiet_after == timedelta(days=14)
    assert plain.service.report_failing_after == timedelta(days=1)
    assert health.check_interval(plain) == timedelta(minutes=1), "at least once a minute"


def test_apprise_urls_are_masked_in_check_and_channels_are_named(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
            sources: [{name: A, feed: "https://a.example.org/f"}]
            notify:
              apprise:
                - {url: "tgram://123456:SECRETTOKEN/987", min_score: 0.7}
                - {url: "ntfy://ntfy.example.org/wt", name: team}
            """,
        )
    )
    summary = "\n".join(config.summary())
    assert "SECRETTOKEN" not in summary and "tgram://***" in summary
    assert "SECRETTOKEN" not in repr(config)
    channels = health.event_channels(config.notify)
    assert channels[1] == "apprise:team" and channels[0].startswith("apprise:apprise-")


def test_the_same_apprise_url_twice_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        sources: [{name: A, feed: "https://a.example.org/f"}]
        notify:
          apprise:
            - {url: "ntfy://ntfy.example.org/wt"}
            - {url: "ntfy://ntfy.example.org/wt"}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any("same destination as apprise[0]" in p for p in caught.value.problems)
