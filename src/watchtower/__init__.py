"""Watchtower: watch news feeds and web pages for one subject and alert on what matters."""

__version__ = "0.1.0"
