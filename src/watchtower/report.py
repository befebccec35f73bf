"""Reports shared by the command line and the demo: alerts and baseline rows as text."""

from __future__ import annotations

from typing import Any

_EXCERPT = 300


def format_alerts(store: Any, limit: int = 50) -> str:
    """Alerts as text, newest first: score, title, outlets, the reasons, the item's
    language and its excerpt (at most 300 characters, on one line), and the archive copy."""
    lines: list[str] = []
    for alert in store.list_alerts(limit=limit):
        lines.append(
            f"{alert.score:.2f}  {alert.title}  [#{alert.id}, "
            f"{alert.created_at:%Y-%m-%d %H:%M} UTC]"
        )
        for link in alert.sources:
            lines.append(f"      {link.source}: {link.url or '(no link)'}")
        lines.append(f"      why: {alert.explanation.summary()}")
        lines.append(f"      language: {alert.explanation.lang or 'und'}")
        excerpt = " ".join(alert.explanation.excerpt.split())
        if excerpt:
            clipped = excerpt if len(excerpt) <= _EXCERPT else excerpt[: _EXCERPT - 1] + "…"
            lines.append(f"      excerpt: {clipped}")
        lines.extend(_archive_lines(alert))
    return "\n".join(lines) if lines else "no alerts yet"


def _archive_lines(alert: Any) -> list[str]:
    """``archived: PATH (sha256 …)`` when the alert's document was archived."""
    archive = getattr(alert, "archive", None)
    if not archive:
        return []
    return [f"      archived: {archive.get('path')} (sha256 {archive.get('sha256')})"]


def format_baseline_row(row: Any) -> str:
    """One row of ``watchtower baseline``'s description as an aligned line."""
    if isinstance(row, (list, tuple)) and len(row) == 2 and isinstance(row[1], list):
        return f"{row[0]}: " + ", ".join(str(alias) for alias in row[1])
    if isinstance(row, (list, tuple)) and len(row) == 2 and isinstance(row[1], float):
        return f"{row[1]:8.3f}  {row[0]}"
    if isinstance(row, dict) and {"label", "weight", "from", "forms"} <= row.keys():
        forms = f"  also: {row['forms']}" if row["forms"] else ""
        return f"{float(row['weight']):8.3f}  {row['label']}  [{row['from']}]{forms}"
    if isinstance(row, dict) and {"label", "weight"} <= row.keys():
        rest = "  ".join(f"{k}={v}" for k, v in row.items() if k not in ("label", "weight"))
        return f"{float(row['weight']):8.3f}  {row['label']}" + (f"  ({rest})" if rest else "")
    if isinstance(row, dict):
        return "  ".join(f"{k}={v}" for k, v in row.items())
    return str(row)
