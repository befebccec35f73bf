"""Learning a baseline in a child process, so that its tables do not stay behind.

:func:`build_in_child` runs :func:`watchtower.baseline.build_from` in a fresh
interpreter (``python -c``, never a ``fork`` of a threaded daemon) and returns the same
:class:`~watchtower.baseline.Baseline`. The seeds and settings go to the child's stdin
and the baseline comes back on its stdout, pickled: one pipe between this process and
the child it started. The child's log records are logged here under their own logger
names, and a :class:`ConfigError` it raises is raised here with the same problems.
When no child can run (it cannot start, it dies, it answers nothing readable) or it
fails for any other reason, the baseline is learnt in this process instead (where such
a failure shows its own traceback) and a warning says why.
"""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from watchtower import baseline as _baseline
from watchtower.baseline import Baseline, BaselineSettings
from watchtower.errors import ConfigError
from watchtower.seeds import Seed

__all__ = ["build_in_child"]

log = logging.getLogger(__name__)

_CODE = "from watchtower.baseline_child import _child_main; _child_main()"

#: One answer: ("baseline", its JSON document) | ("config", problems) | ("failed", text),
#: with the log records ``(level, logger name, message)`` the child emitted.
_Answer = tuple[str, Any, list[tuple[int, str, str]]]


class _Records(logging.Handler):
    """Keeps every record of the child, formatted, for the parent to log."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[int, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelno, record.name, record.getMessage()))


def build_in_child(cfg: BaselineSettings, seeds: Sequence[Seed], meta_digest: str) -> Baseline:
    """The baseline of ``seeds`` and ``cfg``, learnt in a child process.

    Raises :class:`ConfigError` as :func:`~watchtower.baseline.build_from` does.
    """
    answer = _ask_child(pickle.dumps((cfg, tuple(seeds), meta_digest)))
    if answer is None:
        return _baseline.build_from(cfg, seeds, meta_digest)
    kind, payload, records = answer
    for level, name, message in records:
        logging.getLogger(name).log(level, "%s", message)
    if kind == "config":
        raise ConfigError(payload)
    if kind == "failed":  # learnt here, it fails here with its own traceback (or works)
        log.warning(
            "learning the baseline in a child process failed (%s); learning it here", payload
        )
        return _baseline.build_from(cfg, seeds, meta_digest)
    return Baseline.from_json(payload)


def _ask_child(job: bytes) -> _Answer | None:
    """The child's answer to ``job``; ``None`` (and a warning) when there is none."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CODE], input=job, capture_output=True, check=False
        )
    except OSError as exc:
        log.warning("cannot start a process to learn the baseline (%s); learning it here", exc)
        return None
    try:
        answer: _Answer = pickle.loads(done.stdout)
        kind, _, _ = answer
    except Exception:  # noqa: BLE001  (any unreadable answer: learn here instead)
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["nothing"]
        log.warning(
            "the process learning the baseline ended with code %s and no answer (%s); "
            "learning it here",
            done.returncode,
            tail[0],
        )
        return None
    return answer


def _child_main() -> None:
    """The child: read the job from stdin, learn, write the answer to stdout."""
    answer_to = sys.stdout.buffer
    sys.stdout = sys.stderr  # whatever learning prints cannot garble the answer
    records = _Records()
    root = logging.getLogger()
    root.addHandler(records)
    root.setLevel(logging.DEBUG)
    cfg, seeds, meta_digest = pickle.loads(sys.stdin.buffer.read())
    answer: _Answer
    try:
        built = _baseline.build_from(cfg, seeds, meta_digest)
        answer = ("baseline", built.to_json(), records.records)
    except ConfigError as exc:
        answer = ("config", list(exc.problems), records.records)
    except Exception as exc:  # noqa: BLE001  (reported to the parent, which learns itself)
        answer = ("failed", f"{type(exc).__name__}: {exc}", records.records)
    answer_to.write(pickle.dumps(answer))
    answer_to.flush()
