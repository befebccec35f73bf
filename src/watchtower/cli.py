"""The ``watchtower`` command line.

Every expected failure (bad config, unreadable input, unreachable store…) is printed
as a message that says how to fix it, with exit code 2 — never a traceback.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from watchtower import __version__
from watchtower.config import Config, default_config_path, load_config
from watchtower.errors import ConfigError, WatchtowerError
from watchtower.report import format_alerts, format_baseline_row

if TYPE_CHECKING:
    from email.message import EmailMessage

    from watchtower.store import Store

F = TypeVar("F", bound=Callable[..., Any])

CONFIG_HELP = "Config file (default: $WATCHTOWER_CONFIG, else config/watchtower.yaml)."


def config_option(func: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=CONFIG_HELP,
    )(func)


def fail(message: str, fix: str | None = None) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    if fix:
        click.echo(f"fix: {fix}", err=True)
    sys.exit(2)


def open_store(config: Config) -> AbstractContextManager[Store]:
    """The configured store (see :func:`watchtower.runtime.open_store`)."""
    from watchtower.runtime import open_store as _open

    return _open(config)


def open_config(config_path: Path | None) -> Config:
    path = config_path or default_config_path()
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        fail(
            f"{path}: configuration is invalid ({len(exc.problems)} problem(s))",
            "correct the lines above, then run `watchtower check` again",
        )


def setup_logging(config: Config | None = None, verbose: bool = False) -> None:
    from watchtower.logs import redact
    from watchtower.logs import setup_logging as _setup

    level = "DEBUG" if verbose else (config.service.log_level if config else "WARNING")
    _setup(level)
    if config is not None:
        redact(*_secrets(config))


def _secrets(config: Config) -> list[str]:
    """Every secret the logs must never show: webhook secrets, the SMTP password and the
    passwords inside the store, webhook and source URLs."""
    from urllib.parse import unquote

    from watchtower.masking import url_password

    secrets = [w.secret.get_secret_value() for w in config.notify.webhooks]
    secrets += [s.get_secret_value() for s in (config.web.auth, config.web.secret) if s]
    email = config.notify.email
    if email is not None and email.smtp.password is not None:
        secrets.append(email.smtp.password.get_secret_value())
    urls = [config.store, *(w.url for w in config.notify.webhooks)]
    try:
        urls += [s.url for s in config.feed_and_page_sources(include_disabled=True)]
    except WatchtowerError:
        urls += [s.url for s in config.sources if s.kind != "opml"]
    for url in urls:
        password = url_password(url)
        if password:
            secrets += [password, unquote(password)]
    return [s for s in secrets if s]


def startup_done() -> None:
    """Resume the garbage collector paused by :func:`watchtower.__main__.main`, with the
    objects made so far frozen (a no-op when it was not paused)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="watchtower")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Watch news feeds and web pages for one subject; alert on what matters."""
    if ctx.invoked_subcommand != "run":  # run resumes it once its modules are loaded
        startup_done()


@cli.command()
@config_option
@click.option("--once", is_flag=True, help="Poll every source once, deliver what is due, exit.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def run(config_path: Path | None, once: bool, verbose: bool) -> None:
    """Run the service (until SIGTERM), or one pass with --once."""
    config = open_config(config_path)
    setup_logging(config, verbose)
    if once:
        from watchtower.runtime import run_once

        startup_done()
        run_once(config)
        return
    from watchtower.daemon import Daemon

    startup_done()
    sys.exit(asyncio.run(Daemon(config, config.path).run()))


@cli.command()
@config_option
@click.option("--sources", "show_sources", is_flag=True, help="Also list each source's health.")
def check(config_path: Path | None, show_sources: bool) -> None:
    """Validate the config and seeds; print a summary."""
    config = open_config(config_path)
    from watchtower.seeds import read_seeds

    read_seeds(config.baseline.seeds)  # unreadable or empty seeds are a ConfigError
    # The OPML files are read too: a broken or hostile one is a ConfigError with its
    # file:line (load_config defers it so that other commands still work).
    config.feed_and_page_sources(include_disabled=True)
    click.echo(f"{config.path}: OK")
    for line in config.summary():
        click.echo(f"  {line}")
    if show_sources:
        _print_status(config)


@cli.command()
@config_option
@click.option(
    "--input",
    "input_file",
    required=True,
    type=click.File("r", encoding="utf-8"),
    help="JSON lines: {id, title, summary?, content?, url?}; '-' reads stdin.",
)
def score(config_path: Path | None, input_file: IO[str]) -> None:
    """Score documents without fetching or storing them."""
    config = open_config(config_path)
    setup_logging(config)
    from watchtower.jsonlines import score_jsonl
    from watchtower.runtime import load_scorer

    with open_store(config) as store:
        labelled = store.labelled_items()
    scorer = load_scorer(config, labelled)
    for result in score_jsonl(input_file, scorer, config.alerts.threshold):
        click.echo(json.dumps(result, ensure_ascii=False))


@cli.command()
@config_option
@click.option("--top", default=25, show_default=True, help="How many terms and phrases.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def baseline(config_path: Path | None, top: int, as_json: bool) -> None:
    """Show what Watchtower learned from the seeds: terms, phrases, entities."""
    config = open_config(config_path)
    setup_logging(config)
    from watchtower.runtime import load_matcher

    description = load_matcher(config).baseline.describe(top)
    if as_json:
        click.echo(json.dumps(description, indent=2, ensure_ascii=False))
        return
    for section, rows in description.items():
        click.echo(f"{section}:")
        if isinstance(rows, dict):
            rows = list(rows.items())
        for row in rows if isinstance(rows, list) else [rows]:
            click.echo(f"  {format_baseline_row(row)}")


@cli.command()
@config_option
@click.option("--send", "mode", flag_value="send", help="Send the digest now.")
@click.option("--preview", "mode", flag_value="preview", help="Print the digest instead.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --preview: write the HTML part to this file (open it in a browser).",
)
def digest(config_path: Path | None, mode: str | None, html_path: Path | None) -> None:
    """Send the digest now (--send) or print it (--preview)."""
    if mode is None:
        fail("say --send or --preview", "watchtower digest --preview")
    if html_path is not None and mode != "preview":
        fail("--html goes with --preview", "watchtower digest --preview --html digest.html")
    config = open_config(config_path)
    setup_logging(config)
    email = config.notify.email
    if email is None:
        fail("no notify.email in the config", "add notify.email, as in the example config")
    from watchtower.notify.digest import send_digest
    from watchtower.review import link_maker

    with open_store(config) as store:
        links = link_maker(config, store)
        outcome = asyncio.run(
            send_digest(store, email, now=datetime.now(UTC), preview=mode == "preview", links=links)
        )
    if mode == "preview":
        _show_preview(outcome.message, html_path)
        return
    click.echo(
        f"digest {outcome.period}: "
        + (
            f"sent, {outcome.alert_count} alerts"
            if outcome.sent
            else (outcome.reason or "not sent")
        )
    )


def _show_preview(message: EmailMessage | None, html_path: Path | None) -> None:
    """Print the previewed digest, or write its HTML part to ``html_path``."""
    if message is None:
        click.echo("(no alerts for a digest)")
        return
    if html_path is None:
        click.echo(message.as_string())
        return
    from email.message import EmailMessage

    part = message.get_body(("html",))
    html = part.get_content() if isinstance(part, EmailMessage) else ""
    try:
        html_path.write_text(html, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {html_path}: {exc.strerror}", "give a writable file path")
    click.echo(f"digest preview written to {html_path}")


@cli.command()
@config_option
@click.option("--limit", default=50, show_default=True)
@click.option("--failed", is_flag=True, help="List dead-letter deliveries instead.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines: one alert object a line.")
def alerts(config_path: Path | None, limit: int, failed: bool, as_json: bool) -> None:
    """List stored alerts, newest first, with score, title, sources and why."""
    config = open_config(config_path)
    with open_store(config) as store:
        if as_json and not failed:
            _print_alert_objects(config, store, limit)
            return
        if failed:
            dead = store.dead_deliveries()
            if not dead:
                click.echo("no failed deliveries")
            for job, error in dead:
                click.echo(
                    f"#{job.id} alert {job.alert_id} {job.channel} "
                    f"after {job.attempts} attempts: {error}"
                )
            return
        click.echo(format_alerts(store, limit))


def _print_alert_objects(config: Config, store: Store, limit: int) -> None:
    """``alerts --json``: the alert objects, newest first, one JSON document a line."""
    from watchtower.alertobject import alert_object
    from watchtower.review import link_maker

    views = store.list_alerts(limit=limit)
    verdicts = store.feedback_for(v.id for v in views)
    links = link_maker(config, store)
    for view in views:
        obj = alert_object(view, feedback=verdicts.get(view.id), links=links)
        click.echo(json.dumps(obj, ensure_ascii=False))


_VERDICTS = ("relevant", "not-relevant")


@cli.command()
@config_option
@click.argument("first", metavar="ALERT_ID|import")
@click.argument("second", metavar="relevant|not-relevant|FILE.jsonl")
def feedback(config_path: Path | None, first: str, second: str) -> None:
    """Record a verdict on an alert, or import items judged before.

    \b
    watchtower feedback ALERT_ID relevant|not-relevant
    watchtower feedback import FILE.jsonl   (lines {"title", "summary"?, "content"?,
                                             "url"?, "label"}: 2 relevant, 1 borderline,
                                             0 not relevant)
    """
    if first == "import":
        _import_labelled(open_config(config_path), Path(second))
        return
    if not first.isdigit():
        fail(f"{first!r} is not an alert id", "watchtower alerts lists the ids (#N)")
    if second not in _VERDICTS:
        fail(
            f"{second!r} is not a verdict",
            f"write relevant or not-relevant, e.g. watchtower feedback {first} not-relevant",
        )
    config = open_config(config_path)
    with open_store(config) as store:
        if not store.record_feedback(int(first), second, now=datetime.now(UTC)):  # type: ignore[arg-type]
            fail(f"no alert #{first} in the store", "watchtower alerts lists the ids (#N)")
    click.echo(f"alert #{first}: recorded {second}")


def _import_labelled(config: Config, path: Path) -> None:
    from watchtower.labelfile import LabelFileError, read_labelled

    try:
        with path.open(encoding="utf-8") as lines:
            items = read_labelled(lines, str(path))
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}", "give the path of a .jsonl file")
    except UnicodeDecodeError:
        fail(f"{path} is not UTF-8 text", "save the file as UTF-8")
    except LabelFileError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        fail(f"{path}: nothing imported", "correct the lines above and import again")
    with open_store(config) as store:
        count = store.import_labelled(items, now=datetime.now(UTC))
    click.echo(f"imported {count} labelled items from {path}")


@cli.group()
def deliveries() -> None:
    """Inspect and re-queue deliveries."""


@deliveries.command("retry")
@config_option
@click.argument("delivery_id", required=False, type=int)
@click.option("--all", "retry_all", is_flag=True, help="Re-queue every dead letter.")
def deliveries_retry(config_path: Path | None, delivery_id: int | None, retry_all: bool) -> None:
    """Re-queue a dead-letter delivery (ID) or all of them (--all)."""
    if (delivery_id is None) == (not retry_all):
        fail("give a delivery ID or --all", "watchtower alerts --failed lists the IDs")
    config = open_config(config_path)
    from watchtower.status import service_running

    with open_store(config) as store:
        now = datetime.now(UTC)
        count = store.requeue(None if retry_all else delivery_id, now=now)
        if retry_all:
            count += store.requeue_event_deliveries(now)
        running = service_running(store, now)
    if count == 0 and not retry_all:
        fail(f"no dead delivery #{delivery_id}", "watchtower alerts --failed lists the IDs")
    click.echo(f"re-queued {count} deliveries; {running}")


@cli.command()
@config_option
def status(config_path: Path | None) -> None:
    """Per-source health, the outbox backlog and dead letters."""
    _print_status(open_config(config_path))


def _print_status(config: Config) -> None:
    from watchtower.status import render_status

    with open_store(config) as store:
        click.echo(render_status(store, config, datetime.now(UTC)))


@cli.group()
def sources() -> None:
    """Work with the configured sources."""


@sources.command("export")
@config_option
def sources_export(config_path: Path | None) -> None:
    """Print every configured feed as OPML (for a feed reader)."""
    config = open_config(config_path)
    from watchtower.sources.opml import export_opml

    feeds = [(s.name, s.url) for s in config.feed_and_page_sources() if s.kind == "feed"]
    click.echo(export_opml(feeds))


@cli.command()
def demo() -> None:
    """Run the pipeline once on bundled sample feeds served on loopback, and show it."""
    from watchtower.demo import run_demo

    sys.exit(run_demo(sys.stdout))


def main() -> None:
    try:
        cli.main(prog_name="watchtower", standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted")
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        fail("configuration is invalid", "correct the lines above")
    except WatchtowerError as exc:
        fail(str(exc), _fix_for(exc))
    except KeyboardInterrupt:
        sys.exit(130)


def _fix_for(exc: WatchtowerError) -> str | None:
    from watchtower.errors import StoreBusyError, StoreError

    if isinstance(exc, StoreBusyError):
        return (
            "one Watchtower runs per store: stop the running one first "
            "(`systemctl stop watchtower`), or give this one another `store:`"
        )
    if isinstance(exc, StoreError):
        return "check `store:` in the config and that the database is reachable"
    return None
