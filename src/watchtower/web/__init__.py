"""The review page, JSON API and feedback links (served by the daemon on ``web.listen``).

* :mod:`~watchtower.web.tokens` — signed feedback tokens and ``feedback_links``;
* :mod:`~watchtower.web.protocol` — :class:`AlertReader`, what the page needs from the store;
* :mod:`~watchtower.web.app` — :func:`create_app`, the Starlette app;
* :mod:`~watchtower.web.health` — :func:`source_status`, store health → page rows;
* :mod:`~watchtower.web.search` — full-text index text and safe queries (CJK bigrams);
* :mod:`~watchtower.web.server` — :func:`serve` inside the daemon's loop;
* :mod:`~watchtower.web.listen` — :func:`parse_listen`, :func:`is_loopback` (no web stack);
* :mod:`~watchtower.web.maillinks` — the two feedback links in digest and alert emails.
"""
