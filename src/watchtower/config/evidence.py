"""The ``archive:`` section: the WARC copy of every alerted document, and Save Page Now.

``archive.dir`` (relative to the config file) switches the archive on
(:mod:`watchtower.archive`); without it no copy is written. ``save_page_now: true``
also asks the Internet Archive to capture each alert's URL, through the outbox like any
delivery (channel ``savepagenow``, :mod:`watchtower.notify.savepagenow`). Both are off
by default. ``archive: null`` or an empty section means the defaults.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationInfo, field_validator, model_validator

from watchtower.config.fields import Duration, WebUrl, _Model, _resolve

#: Where Save Page Now is asked by default: ``GET <endpoint><url>``.
SAVE_PAGE_NOW_ENDPOINT = "https://web.archive.org/save/"


class ArchiveConfig(_Model):
    """Where alerted documents are preserved, and whether the Internet Archive is asked too."""

    dir: Path | None = None
    save_page_now: bool = False
    save_page_now_endpoint: WebUrl = SAVE_PAGE_NOW_ENDPOINT
    save_page_now_timeout: Duration = timedelta(seconds=60)

    @model_validator(mode="before")
    @classmethod
    def _null_is_default(cls, data: Any) -> Any:
        """``archive:`` left empty (YAML null) is the default section."""
        return {} if data is None else data

    @field_validator("dir")
    @classmethod
    def _dir(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)

    @property
    def enabled(self) -> bool:
        """True when alerted documents are written to :attr:`dir`."""
        return self.dir is not None

    def summary_line(self) -> str:
        """The ``archive:`` line of ``watchtower check``."""
        spn = "Save Page Now on" if self.save_page_now else "Save Page Now off"
        where = f"WARC copies in {self.dir}" if self.dir is not None else "off"
        return f"archive: {where}; {spn}"
