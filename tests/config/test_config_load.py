"""load_config: valid files, every kind of mistake, file:line in every message."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from watchtower.config import Config, SourceConfig, load_config
from watchtower.errors import ConfigError


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Write a config into tmp_path and return its name as given (relative to the cwd)."""
    monkeypatch.chdir(tmp_path)

    def _write(text: str, name: str = "wt.yaml") -> str:
        Path(name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return name

    return _write


def problems_of(path: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_three_different_mistakes_are_reported_together_with_lines(
    write, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WT_TEST_MISSING_SECRET", raising=False)
    path = write(
        """
        fetch:
          timout: 20s
        sources:
          - name: Daily NK
            feed: https://www.dailynk.com/english/feed/
            every: 5x
        notify:
          webhooks:
            - url: https://hooks.example.org/wt
              secret: ${WT_TEST_MISSING_SECRET}
        """
    )
    problems = problems_of(path)
    assert problems == (
        "wt.yaml:2: fetch.timout: unknown key (expected one of: timeout, max_bytes, "
        "allow_private_addresses, contact, max_redirects, per_host_connections, "
        'per_host_interval, parse_timeout, parse_memory; did you mean "timeout"?)',
        'wt.yaml:6: sources[0].every: "5x" is not a duration '
        "(expected e.g. 30s, 15m, 6h, 1d, 1h30m)",
        "wt.yaml:10: notify.webhooks[0].secret: environment variable WT_TEST_MISSING_SECRET "
        "is not set (set it, or write ${WT_TEST_MISSING_SECRET:-default})",
    )


def test_valid_config_is_typed_frozen_and_resolved(write, tmp_path: Path) -> None:
    path = write(
        """
        store: sqlite:///data/wt.db
        baseline:
          seeds: seeds
          cache: cache/baseline.json
          terms: {forced repatriation: 3}
          entities: {North Korea: [DPRK, Pyongyang]}
        fetch: {timeout: 1h30m, max_bytes: 2MiB, contact: https://example.org/about}
        sources:
          - {name: NK News, feed: "https://www.nknews.org/feed/", every: 15m}
          - {name: OHCHR, page: "https://www.ohchr.org/en/news", select: main, every: 6h,
             exclude_select: [nav], ignore: ['\\d+ views']}
          - {opml: feeds.opml}
        """
    )
    (tmp_path / "feeds.opml").write_text("<opml/>", encoding="utf-8")
    config = load_config(path)
    assert config.path == tmp_path / "wt.yaml"
    assert config.store == f"sqlite:///{tmp_path}/data/wt.db"
    assert config.baseline.seeds == tmp_path / "seeds"
    assert config.baseline.cache == tmp_path / "cache" / "baseline.json"
    assert {k: v.weight for k, v in config.baseline.terms.items()} == {"forced repatriation": 3.0}
    assert config.fetch.timeout == timedelta(hours=1, minutes=30)
    assert config.fetch.max_bytes == 2 * 1024 * 1024
    assert [s.kind for s in config.sources] == ["feed", "page", "opml"]
    assert config.sources[0].url == "https://www.nknews.org/feed/"
    assert config.sources[1].every == timedelta(hours=6)
    assert config.sources[2].opml == tmp_path / "feeds.opml"
    with pytest.raises(ValueError):
        config.fetch.timeout = timedelta(seconds=1)  # type: ignore[misc]


def test_defaults_are_resolved_against_the_config_folder(write, tmp_path: Path) -> None:
    Path("etc").mkdir()
    path = write("sources: []\n", name="etc/wt.yaml")
    config = load_config(path)
    assert config.baseline.seeds == tmp_path / "seeds"
    assert config.store == f"sqlite:///{tmp_path}/etc/var/watchtower.db"
    assert config.notify.email is None and config.notify.webhooks == []


def test_absolute_and_memory_and_postgres_stores(write) -> None:
    for store, expected in [
        ("sqlite:////srv/wt.db", "sqlite:////srv/wt.db"),
        ("sqlite://", "sqlite://"),
        ("postgresql://wt@db.example.org/wt", "postgresql+psycopg://wt@db.example.org/wt"),
    ]:
        assert load_config(write(f"store: '{store}'\n")).store == expected


def test_source_with_both_feed_and_page(write) -> None:
    path = write(
        """
        sources:
          - name: Both
            feed: https://example.org/rss
            page: https://example.org/page
        """
    )
    assert problems_of(path) == (
        "wt.yaml:4: sources[0].page: given together with feed "
        "(expected exactly one of feed, page, opml per source)",
    )


def test_source_with_no_kind_and_no_name(write) -> None:
    path = write("sources:\n  - every: 1h\n")
    assert problems_of(path) == (
        "wt.yaml:2: sources[0]: no feed, page or opml (expected exactly one of them)",
        "wt.yaml:2: sources[0].name: required key is missing (expected e.g. name: Daily NK)",
    )


def test_duplicate_source_names(write) -> None:
    path = write(
        """
        sources:
          - {name: Daily NK, feed: "https://www.dailynk.com/english/feed/"}
          - {name: RFA, feed: "https://www.rfa.org/english/rss2.xml"}
          - {name: daily nk, page: "https://www.dailynk.com/english/"}
        """
    )
    assert problems_of(path) == (
        'wt.yaml:4: sources[2].name: "daily nk" is already the name of sources[0] '
        "(expected a unique name)",
    )


def test_duplicate_names_reported_alongside_other_problems(write) -> None:
    path = write(
        """
        sources:
          - {name: A, feed: "https://example.org/a", every: soon}
          - {name: A, feed: "https://example.org/b"}
        """
    )
    problems = problems_of(path)
    assert len(problems) == 2
    assert problems[0].startswith('wt.yaml:2: sources[0].every: "soon" is not a duration')
    assert problems[1].startswith('wt.yaml:3: sources[1].name: "A" is already the name')


def test_select_on_a_feed_source(write) -> None:
    path = write(
        """
        sources:
          - name: HRW
            feed: https://www.hrw.org/rss/asia/north-korea
            select: main
            ignore: [ads]
        """
    )
    assert problems_of(path) == (
        "wt.yaml:4: sources[0].select: only allowed on page sources (this source is a feed)",
        "wt.yaml:5: sources[0].ignore: only allowed on page sources (this source is a feed)",
    )


@pytest.mark.parametrize(
    ("url", "wrong"),
    [
        ("ftp://example.org/feed", 'scheme "ftp" is not allowed'),
        ("file:///etc/passwd", 'scheme "file" is not allowed'),
        ("javascript:alert(1)", 'scheme "javascript" is not allowed'),
        ("example.org/feed", "no scheme is not allowed"),
        ("https:///feed", "has no host name"),
    ],
)
def test_non_http_urls_are_refused(write, url: str, wrong: str) -> None:
    path = write(f"sources:\n  - name: X\n    feed: '{url}'\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"wt.yaml:3: sources[0].feed: {wrong}")
    assert problem.endswith("(expected an http:// or https:// URL)") or "expected" in problem


def test_empty_file(write) -> None:
    assert problems_of(write("# only a comment\n")) == (
        "wt.yaml:1: the file is empty (expected a mapping with a sources: list)",
    )


def test_yaml_syntax_error_has_its_line(write) -> None:
    path = write(
        """
        store: sqlite:///x.db
        sources:
          - name: "unterminated
            feed: https://example.org
        fetch: [
        """
    )
    (problem,) = problems_of(path)
    assert problem.startswith("wt.yaml:")
    assert "invalid YAML" in problem and "(expected valid YAML syntax)" in problem
    assert int(problem.split(":")[1]) >= 3


def test_duplicate_yaml_key(write) -> None:
    (problem,) = problems_of(write("store: sqlite://\nalerts: {}\nstore: sqlite://\n"))
    assert problem.startswith("wt.yaml:3: invalid YAML: ")
    assert 'duplicate key "store"' in problem


def test_not_a_mapping_top_level(write) -> None:
    assert problems_of(write("- store: sqlite://\n")) == (
        "wt.yaml:1: the top level is a list (expected a mapping of keys such as store:, "
        "baseline:, sources:)",
    )


def test_missing_file_and_directory(write) -> None:
    (problem,) = problems_of("nowhere.yaml")
    assert problem.startswith("nowhere.yaml:1: cannot read the config file: No such file")
    Path("adir").mkdir()
    (problem,) = problems_of("adir")
    assert problem.startswith("adir:1: cannot read the config file")


def test_not_utf8(write) -> None:
    Path("latin.yaml").write_bytes(b"store: sqlite://\nsources: []\n# caf\xe9\n")
    assert problems_of("latin.yaml") == (
        "latin.yaml:3: not UTF-8 text (expected a UTF-8 YAML file)",
    )


def test_alias_bomb_and_recursive_alias(write) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefg", "bcdefgh", strict=True)
    )
    (problem,) = problems_of(write(bomb))
    assert "document expands to more than" in problem
    (problem,) = problems_of(write("baseline:\n  exclude: &a [x, *a]\n"))
    assert problem == "wt.yaml:2: baseline.exclude[1]: is empty (expected text)"


def test_wrong_shapes_are_plain_messages(write) -> None:
    path = write(
        """
        fetch: [timeout]
        alerts: {threshold: high}
        sources: {name: x}
        service: {max_concurrent_polls: 2.5, log_level: 3}
        metrics: {enabled: maybe}
        """
    )
    assert problems_of(path) == (
        "wt.yaml:1: fetch: is a list (expected a mapping of key: value lines)",
        'wt.yaml:2: alerts.threshold: "high" is not a number (expected e.g. 0.5)',
        "wt.yaml:3: sources: is a mapping (expected a list: one '- item' per line, or [a, b])",
        "wt.yaml:4: service.max_concurrent_polls: 2.5 is not a whole number (expected e.g. 5)",
        "wt.yaml:4: service.log_level: 3 is not allowed (expected one of: 'DEBUG', 'INFO', "
        "'WARNING' or 'ERROR')",
        'wt.yaml:5: metrics.enabled: "maybe" is not true or false (expected true or false)',
    )


def test_no_pydantic_text_leaks(write) -> None:
    path = write(
        """
        store: "::not a url::"
        alerts: {threshold: [1], story_window: -3s}
        fetch: {max_bytes: 10 parsecs, max_redirects: -1}
        sources:
          - {name: X, page: "https://example.org", select: "a[", every: 0}
        notify:
          email: {from: a@example.org, to: b@example.org, smtp: {starttls: true, tls: true}}
        """
    )
    problems = problems_of(path)
    assert len(problems) == 8
    for problem in problems:
        assert "pydantic" not in problem and "Input should" not in problem
        assert "Value error" not in problem and "For further information" not in problem
        assert "(expected" in problem
    assert problems[-1] == (
        "wt.yaml:7: notify.email.smtp.tls: cannot be combined with starttls (expected "
        "starttls: true on port 587, or tls: true on port 465)"
    )


def test_unknown_keys_everywhere_with_suggestions(write) -> None:
    path = write(
        """
        sourcs: []
        sources:
          - {name: X, feed: "https://example.org/rss", evry: 1h}
        notify:
          email: {form: a@example.org, to: [b@example.org]}
        """
    )
    problems = problems_of(path)
    assert problems[0].startswith("wt.yaml:1: sourcs: unknown key (expected one of: store,")
    assert problems[0].endswith('did you mean "sources"?)')
    assert problems[1].endswith('did you mean "every"?)')
    assert problems[1].startswith("wt.yaml:3: sources[0].evry: unknown key")
    assert (
        "wt.yaml:5: notify.email.form: unknown key (expected one of: smtp, from, to, "
        "immediate_min_score, digest, timezone, send_empty_digest, subject_prefix; "
        'did you mean "from"?)'
    ) in problems
    assert "wt.yaml:5: notify.email.from: required key is missing (expected a value here)" in (
        problems
    )


def test_interpolation(write, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WT_TEST_HOST", "hooks.example.org")
    monkeypatch.setenv("WT_TEST_EMPTY", "")
    monkeypatch.delenv("WT_TEST_UNSET", raising=False)
    path = write(
        """
        fetch: {contact: "https://${WT_TEST_HOST}/about $${NOT_A_VAR} $$ $HOME"}
        sources:
          - {name: "${WT_TEST_UNSET:-Fallback}", feed: "https://${WT_TEST_HOST}/rss",
             every: "${WT_TEST_EMPTY:-2h}"}
        notify:
          webhooks:
            - {url: "https://${WT_TEST_HOST}/", secret: "s-${WT_TEST_EMPTY}-x"}
        """
    )
    config = load_config(path)
    assert config.fetch.contact == "https://hooks.example.org/about ${NOT_A_VAR} $$ $HOME"
    assert config.sources[0].name == "Fallback"
    assert config.sources[0].every == timedelta(hours=2)
    assert config.notify.webhooks[0].secret.get_secret_value() == "s--x"


def test_malformed_reference_and_value_shown_as_written(
    write, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WT_TEST_EVERY", "supersecret-every")
    path = write(
        """
        sources:
          - {name: "${}", feed: "https://example.org/${WT_TEST_EVERY", every: "${WT_TEST_EVERY}"}
        """
    )
    problems = problems_of(path)
    assert problems[0].startswith('wt.yaml:2: sources[0].name: "${}" is not a valid reference')
    assert 'sources[0].feed: "${" is not a valid reference' in problems[1]
    assert problems[2] == (
        'wt.yaml:2: sources[0].every: "${WT_TEST_EVERY}" is not a duration '
        "(expected e.g. 30s, 15m, 6h, 1d, 1h30m)"
    )
    assert "supersecret" not in "\n".join(problems)


def test_secrets_never_in_errors_or_summary(write, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WT_TEST_SECRET", "whsec_TOPSECRETVALUE==")
    monkeypatch.setenv("WT_TEST_PASSWORD", "hunter2-password")
    text = """
        store: postgresql://wt:${WT_TEST_PASSWORD}@db.example.org/wt
        notify:
          webhooks:
            - {url: "https://hooks.example.org/x?token=${WT_TEST_SECRET}",
               secret: "${WT_TEST_SECRET}"}
          email:
            from: wt@example.org
            to: [analyst@example.org]
            smtp: {host: smtp.example.org, port: 587, starttls: true, username: wt,
                   password: "${WT_TEST_PASSWORD}"}
        """
    config = load_config(write(text))
    summary = "\n".join(config.summary())
    assert "TOPSECRET" not in summary and "hunter2" not in summary
    assert "hooks.example.org" in summary and "smtp.example.org:587" in summary
    assert "TOPSECRET" not in repr(config) and "hunter2" not in repr(config)
    problems = problems_of(
        write(
            textwrap.dedent(text) + "alerts: {threshold: 7}\nfetch: {timeout: nope}\n"
            "service: {jitter: '${WT_TEST_SECRET}'}\n"
        )
    )
    error = "\n".join(problems)
    assert len(problems) == 3
    assert "TOPSECRET" not in error and "hunter2" not in error
    bad_types = write(
        """
        store: ":${WT_TEST_PASSWORD}:"
        notify:
          webhooks: [{url: "https://h.example.org", secret: [x]}]
          email: {from: a@example.org, to: [a@example.org], smtp: {password: {a: b}}}
        """
    )
    error = "\n".join(problems_of(bad_types))
    assert "hunter2" not in error


def test_empty_secret_is_refused(write) -> None:
    path = write("notify:\n  webhooks:\n    - {url: 'https://h.example.org', secret: ''}\n")
    assert problems_of(path) == (
        "wt.yaml:3: notify.webhooks[0].secret: is empty (expected a shared secret, "
        "e.g. ${WEBHOOK_SECRET})",
    )


def test_sections_left_empty_mean_defaults(write) -> None:
    config = load_config(write("baseline:\n  exclude:\nnotify:\n  webhooks:\nfetch:\nsources:\n"))
    assert config.baseline.exclude == [] and config.notify.webhooks == []
    assert config.sources == []


def test_path_is_not_a_yaml_key(write) -> None:
    (problem,) = problems_of(write("path: /etc/passwd\n"))
    assert problem.startswith("wt.yaml:1: path: unknown key (expected one of: store, baseline,")


def test_missing_opml_file(write, tmp_path: Path) -> None:
    (problem,) = problems_of(write("sources:\n  - opml: feeds/missing.opml\n"))
    assert problem == (
        f"wt.yaml:2: sources[0].opml: file {tmp_path}/feeds/missing.opml does not exist "
        "(expected an OPML file)"
    )


def test_default_path_from_environment(write, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write("sources: []\n", name="custom.yaml")
    monkeypatch.setenv("WATCHTOWER_CONFIG", path)
    assert load_config().path.name == "custom.yaml"
    monkeypatch.delenv("WATCHTOWER_CONFIG")
    (problem,) = problems_of(None)  # type: ignore[arg-type]
    assert problem.startswith("config/watchtower.yaml:1: cannot read the config file")


def test_webhook_keys_and_uniqueness(write) -> None:
    path = write(
        """
        notify:
          webhooks:
            - {url: "https://a.example.org/h", secret: s}
            - {url: "https://b.example.org/h", secret: s, name: team}
            - {url: "https://a.example.org/h", secret: t}
        """
    )
    (problem,) = problems_of(path)
    assert problem == (
        "wt.yaml:5: notify.webhooks[2].url: same webhook as webhooks[0] "
        "(expected a unique name or url)"
    )
    hooks = load_config(
        write(path and "notify: {webhooks: [{url: 'https://a.example.org/h', secret: s}]}\n")
    ).notify.webhooks
    assert hooks[0].key.startswith("webhook-") and len(hooks[0].key) == 18
    assert hooks[0].channel == f"webhook:{hooks[0].key}"


def test_models_can_be_built_in_python() -> None:
    source = SourceConfig(name="X", page="https://example.org", select="main", every="2h")
    assert source.every == timedelta(hours=2) and source.kind == "page"
    config = Config(sources=[source])
    assert config.feed_and_page_sources() == [source]
    disabled = SourceConfig(name="Y", feed="https://example.org/rss", enabled=False)
    config = Config(sources=[source, disabled])
    assert config.feed_and_page_sources() == [source]
    assert config.feed_and_page_sources(include_disabled=True) == [source, disabled]


def test_single_strings_where_lists_are_expected(write) -> None:
    config = load_config(
        write(
            """
            baseline:
              entities: {North Korea: DPRK, UNHCR: }
              exclude: K-pop
            notify:
              email: {from: wt@example.org, to: analyst@example.org}
            """
        )
    )
    assert {k: v.aliases for k, v in config.baseline.entities.items()} == {
        "North Korea": ["DPRK"],
        "UNHCR": [],
    }
    assert config.baseline.exclude == ["K-pop"]
    assert config.notify.email is not None and config.notify.email.to == ["analyst@example.org"]


def test_store_urls_are_checked_and_masked(write) -> None:
    config = load_config(write("store: postgres://wt:p%40ss@db.example.org:5432/wt\n"))
    assert config.store == "postgresql+psycopg://wt:p%40ss@db.example.org:5432/wt"
    assert "store: postgresql+psycopg://wt:***@db.example.org:5432/wt" in config.summary()
    assert "p%40ss" not in repr(config)
    assert problems_of(write("store: /var/watchtower.db\n")) == (
        "wt.yaml:1: store: is not a database URL (expected e.g. sqlite:///var/watchtower.db "
        "or postgresql://user@host/dbname)",
    )


def test_where_points_at_the_key(write) -> None:
    config = load_config(write("sources: []\nbaseline:\n  terms: {}\n  seeds: ../seeds\n"))
    assert config.where("baseline", "seeds") == "wt.yaml:4"
    assert config.where("baseline", "exclude") == "wt.yaml:2"
    assert Config().where("store") == "config/watchtower.yaml:1"


def test_opml_sources_are_expanded(write, tmp_path: Path) -> None:
    pytest.importorskip("watchtower.sources.opml")
    (tmp_path / "feeds.opml").write_text(
        '<?xml version="1.0"?><opml version="2.0"><head/><body>'
        '<outline text="Daily NK" type="rss" xmlUrl="https://www.dailynk.com/english/feed/"/>'
        '<outline text="38 North" type="rss" xmlUrl="https://www.38north.org/feed/"/>'
        '<outline text="Bad" type="rss" xmlUrl="ftp://example.org/feed"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    path = write(
        """
        sources:
          - {name: 38 North, feed: "https://www.38north.org/feed/?utm_source=x"}
          - {opml: feeds.opml, every: 2h}
        """
    )
    sources = load_config(path).feed_and_page_sources()
    assert [(s.name, s.url) for s in sources] == [
        ("38 North", "https://www.38north.org/feed/?utm_source=x"),
        ("Daily NK", "https://www.dailynk.com/english/feed/"),
    ]
    assert sources[1].every == timedelta(hours=2) and sources[1].kind == "feed"


def test_whsec_secret_that_is_not_base64_is_refused(write) -> None:
    path = write(
        "notify:\n  webhooks:\n    - {url: 'https://h.example.org', secret: 'whsec_not*base64!'}\n"
    )
    problems = problems_of(path)
    assert problems == (
        "wt.yaml:3: notify.webhooks[0].secret: starts with whsec_ but the rest is not valid "
        "base64 (expected whsec_ followed by the base64 key, or a plain secret)",
    )
    assert "not*base64" not in problems[0]


def test_valid_whsec_and_plain_secrets_are_accepted(write) -> None:
    path = write(
        "notify:\n  webhooks:\n"
        "    - {url: 'https://a.example.org', secret: 'whsec_dGVzdC1zZWNyZXQ='}\n"
        "    - {url: 'https://b.example.org', secret: 'plain secret'}\n"
    )
    assert len(load_config(path).notify.webhooks) == 2


@pytest.mark.parametrize("value", ["30", "0.5", "0"])
def test_bare_number_durations_are_refused(write, value: str) -> None:
    path = write(f"sources:\n  - {{name: A, feed: 'https://example.org/a', every: {value}}}\n")
    assert problems_of(path) == (
        f"wt.yaml:2: sources[0].every: {value} is a number without a unit "
        "(expected a duration, e.g. 30s, 15m, 6h, 1d, 1h30m)",
    )


def test_opml_files_are_read_once_at_load(
    write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opml = pytest.importorskip("watchtower.sources.opml")
    (tmp_path / "feeds.opml").write_text(
        '<?xml version="1.0"?><opml version="2.0"><head/><body>'
        '<outline text="Daily NK" type="rss" xmlUrl="https://www.dailynk.com/english/feed/"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    reads: list[Path] = []
    real = opml.read_opml

    def counting(path: Path):  # type: ignore[no-untyped-def]
        reads.append(path)
        return real(path)

    monkeypatch.setattr(opml, "read_opml", counting)
    config = load_config(write("sources:\n  - {opml: feeds.opml, every: 2h}\n"))
    assert len(reads) == 1
    for _ in range(3):
        assert [s.name for s in config.feed_and_page_sources()] == ["Daily NK"]
    assert len(reads) == 1


SEEDS = Path(__file__).resolve().parents[2] / "seeds"


@pytest.mark.parametrize("key", ["entities", "terms"])
def test_a_list_of_mappings_under_names_is_a_clear_problem_not_a_crash(write, key: str) -> None:
    path = write(
        f"""
        baseline:
          seeds: {SEEDS}
          {key}:
            - {{name: North Korea}}
        sources: []
        """
    )
    problems = problems_of(path)
    assert any(p.startswith(f"{path}:3: baseline.{key}:") for p in problems), problems


def test_a_list_of_plain_names_still_reads_as_names(write) -> None:
    path = write(
        f"""
        baseline:
          seeds: {SEEDS}
          entities: [North Korea, DPRK]
          terms: [forced repatriation]
        sources: []
        """
    )
    config = load_config(path)
    assert set(config.baseline.entities) == {"North Korea", "DPRK"}
