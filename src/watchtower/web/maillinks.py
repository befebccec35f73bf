"""The two feedback links under each alert in digest and immediate emails.

The notify templates get them as Jinja filters. Wire-up (in ``notify/render.py``)::

    from watchtower.web.maillinks import install_filters
    install_filters(env)

give each :class:`AlertCard` a ``feedback_links`` field (the dict returned by
:func:`watchtower.web.tokens.feedback_links`, or ``None`` when ``web.public_url`` is
not set), and end the card macros with::

    {{ c.feedback_links | feedback_links_html }}     {# _card.html.j2 #}
    {{ c.feedback_links | feedback_links_text }}     {# _card.txt.j2 #}

Both render nothing for ``None``. The HTML is a ``<p class="feedback">`` with two plain
``<a>`` links, which survives :func:`watchtower.notify.sanitize.clean_html` unchanged
(https/http URLs only: any other URL is dropped here already).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

from watchtower.notify.sanitize import safe_url

if TYPE_CHECKING:
    import jinja2

__all__ = ["feedback_links_html", "feedback_links_text", "install_filters"]

_LABELS = (("relevant", "Relevant"), ("not_relevant", "Not relevant"))


def _vetted(links: Mapping[str, str] | None) -> list[tuple[str, str]]:
    if not links:
        return []
    vetted = []
    for key, label in _LABELS:
        url = safe_url(links.get(key))
        if url:
            vetted.append((label, url))
    return vetted


def feedback_links_html(links: Mapping[str, str] | None) -> Markup:
    """``<p class="feedback">Was this relevant? <a>Relevant</a> · <a>Not relevant</a></p>``."""
    vetted = _vetted(links)
    if not vetted:
        return Markup("")
    anchors = Markup(" · ").join(
        Markup('<a href="{}">{}</a>').format(url, label) for label, url in vetted
    )
    return Markup('<p class="feedback">{} {}</p>\n').format(escape("Was this relevant?"), anchors)


def feedback_links_text(links: Mapping[str, str] | None) -> str:
    """Two indented lines, ``Relevant: URL`` and ``Not relevant: URL`` (or nothing)."""
    vetted = _vetted(links)
    if not vetted:
        return ""
    return "".join(f"   {label}: {url}\n" for label, url in vetted)


def install_filters(env: jinja2.Environment) -> None:
    """Register ``feedback_links_html`` and ``feedback_links_text`` on ``env``."""
    env.filters["feedback_links_html"] = feedback_links_html
    env.filters["feedback_links_text"] = feedback_links_text
