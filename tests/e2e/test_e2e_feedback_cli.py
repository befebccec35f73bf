"""The command line over a real store: ``alerts --json`` (JSON Lines of alert objects),
``alerts`` text with language and excerpt, ``feedback ID VERDICT`` and ``feedback import``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.web.store_world import TITLES, ids_by_key, store_with_alerts
from watchtower.alertobject import CONTRACT_KEYS
from watchtower.cli import cli
from watchtower.store import Store


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, Store]]:
    url = f"sqlite:///{tmp_path}/watchtower.db"
    config = tmp_path / "watchtower.yaml"
    config.write_text(f"store: {url}\nweb:\n  public_url: https://wt.example.org\n")
    with store_with_alerts(url) as store:
        yield config, store


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_alerts_json_lines_parse_and_carry_every_contract_key(
    world: tuple[Path, Store],
) -> None:
    config, store = world
    ids = ids_by_key(store)
    assert run("feedback", str(ids["ko"]), "relevant", "--config", str(config)).exit_code == 0
    result = run("alerts", "--json", "--config", str(config))
    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(objects) == 4
    for obj in objects:
        assert set(CONTRACT_KEYS) <= set(obj)
        assert obj["type"] == "alert"
        assert set(obj["feedback_links"]) == {"relevant", "not_relevant"}
        assert obj["feedback_links"]["relevant"].startswith("https://wt.example.org/feedback/")
    by_id = {o["alert_id"]: o for o in objects}
    assert by_id[ids["ko"]]["feedback"] == "relevant"
    assert by_id[ids["ko"]]["lang"] == "ko" and by_id[ids["zh"]]["lang"] == "zh"
    assert by_id[ids["ko"]]["title"] == TITLES["ko"]  # not escaped: ensure_ascii off
    assert "중국 공안이" in by_id[ids["ko"]]["excerpt"]
    assert by_id[ids["en"]]["archive"] is None


def test_alerts_text_shows_language_and_excerpt(world: tuple[Path, Store]) -> None:
    config, _ = world
    result = run("alerts", "--config", str(config))
    assert result.exit_code == 0
    assert "language: ko" in result.stdout
    assert "excerpt: Rights groups say about 60 people were sent back" in result.stdout


def test_feedback_records_replaces_and_refuses_unknown_ids(world: tuple[Path, Store]) -> None:
    config, store = world
    alert_id = ids_by_key(store)["en"]
    ok = run("feedback", str(alert_id), "relevant", "--config", str(config))
    assert ok.exit_code == 0 and f"alert #{alert_id}: recorded relevant" in ok.stdout
    run("feedback", "--config", str(config), str(alert_id), "not-relevant")
    assert store.feedback_for([alert_id]) == {alert_id: "not-relevant"}
    unknown = run("feedback", "999", "relevant", "--config", str(config))
    assert unknown.exit_code == 2 and "no alert #999" in unknown.stderr
    bad = run("feedback", str(alert_id), "maybe", "--config", str(config))
    assert bad.exit_code == 2 and "not-relevant" in bad.stderr
    assert store.feedback_for([alert_id]) == {alert_id: "not-relevant"}


def test_feedback_import_all_or_nothing(world: tuple[Path, Store], tmp_path: Path) -> None:
    config, store = world
    good = tmp_path / "judged.jsonl"
    good.write_text(
        json.dumps({"title": "Defectors sent back", "summary": "From Jilin", "label": 2})
        + "\n\n"
        + json.dumps(
            {"title": "Missile test", "content": "Launch", "url": "https://x.y/1", "label": 0}
        )
        + "\n",
        encoding="utf-8",
    )
    result = run("feedback", "import", str(good), "--config", str(config))
    assert result.exit_code == 0 and "imported 2 labelled items" in result.stdout
    assert [(x.title, x.label) for x in store.labelled_items()] == [
        ("Defectors sent back", 2),
        ("Missile test", 0),
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"title": "Fine", "label": 1})
        + "\n"
        + json.dumps({"title": "No label"})
        + "\n"
        + "{not json\n"
        + json.dumps({"title": "", "label": 2})
        + "\n",
        encoding="utf-8",
    )
    refused = run("feedback", "import", str(bad), "--config", str(config))
    assert refused.exit_code == 2
    err = refused.stderr
    assert f"{bad}:2: " in err and "use 2 for relevant, 1 for borderline, 0" in err
    assert f"{bad}:3: is not valid JSON" in err
    assert f'{bad}:4: has no "title"' in err
    assert "nothing imported" in err and "Traceback" not in err
    assert len(store.labelled_items()) == 2  # the good line of the bad file was not imported
    missing = run("feedback", "import", str(tmp_path / "nope.jsonl"), "--config", str(config))
    assert missing.exit_code == 2 and "cannot read" in missing.stderr


def test_digest_preview_carries_the_feedback_links(world: tuple[Path, Store]) -> None:
    import email
    import email.policy

    config, store = world
    config.write_text(
        config.read_text()
        + "notify:\n  email:\n    from: wt@example.org\n    to: [analyst@example.org]\n"
    )
    result = run("digest", "--preview", "--config", str(config))
    assert result.exit_code == 0, result.output
    msg = email.message_from_string(result.stdout, policy=email.policy.default)
    text = msg.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    en = ids_by_key(store)["en"]
    assert f"Not relevant: https://wt.example.org/feedback/{en}.n." in body
    assert "Excerpt: Rights groups say about 60 people" in body
