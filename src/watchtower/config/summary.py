"""The lines of ``watchtower check``'s summary (never a secret)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from watchtower.masking import mask_secret_url, public_url
from watchtower.units import (
    format_bytesize,
    format_duration,
)

# --------------------------------------------------------------------------- summary


def _seed_count(folder: Path) -> str:
    from watchtower.seeds import SEED_SUFFIXES

    if not folder.is_dir():
        return "MISSING"
    count = sum(p.is_file() and p.suffix.lower() in SEED_SUFFIXES for p in folder.iterdir())
    return f"{count} seed files"


def _fetch_line(fetch: Any) -> str:
    private = "allowed" if fetch.allow_private_addresses else "refused"
    return (
        f"fetch: timeout {format_duration(fetch.timeout)}, at most "
        f"{format_bytesize(fetch.max_bytes)} a response, private addresses {private}"
    )


def _plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else words or word + 's'}"


def _source_lines(sources: list[Any]) -> list[str]:
    counts = {kind: sum(s.kind == kind for s in sources) for kind in ("feed", "page", "opml")}
    disabled = sum(not s.enabled for s in sources)
    lines = [
        f"sources: {len(sources)} ({_plural(counts['feed'], 'feed')}, "
        f"{_plural(counts['page'], 'page')}, {_plural(counts['opml'], 'OPML file')}; "
        f"{disabled} disabled)"
    ]
    for source in sources:
        where = public_url(source.url) if source.kind != "opml" else str(source.opml)
        state = "" if source.enabled else " (disabled)"
        lines.append(
            f"  - {source.label}: {source.kind} every {format_duration(source.every)} "
            f"{where}{state}"
        )
    return lines


def _webhook_lines(hooks: list[Any]) -> list[str]:
    if not hooks:
        return ["webhooks: none"]
    return [f"webhooks: {len(hooks)}"] + [
        f"  - {hook.key}: {public_url(hook.url)} for scores ≥ {hook.min_score:g}" for hook in hooks
    ]


def _apprise_lines(entries: list[Any]) -> list[str]:
    if not entries:
        return []
    return [f"apprise: {len(entries)}"] + [
        f"  - {entry.key}: {mask_secret_url(entry.url.get_secret_value())} "
        f"for scores ≥ {entry.min_score:g}"
        for entry in entries
    ]


def _email_line(email: Any | None) -> str:
    if email is None:
        return "email: off (alerts are stored; see them with `watchtower alerts`)"
    smtp = email.smtp
    security = "STARTTLS" if smtp.starttls else "TLS" if smtp.tls else "no TLS"
    login = ", with login" if smtp.username else ""
    digest = f'digest "{email.digest}" {email.timezone}' if email.digest else "no digest"
    immediate = (
        f", immediate for scores ≥ {email.immediate_min_score:g}"
        if email.immediate_min_score is not None
        else ""
    )
    return (
        f"email: {email.from_} → {', '.join(email.to)} via {smtp.host}:{smtp.port} "
        f"({security}{login}); {digest}{immediate}"
    )
