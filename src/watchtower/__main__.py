"""``python -m watchtower`` and the ``watchtower`` command.

Start-up imports create a few hundred thousand objects that live as long as the
process and are never garbage: the cyclic collector is paused while they are made
(about a tenth of the start-up time) and resumed, with them frozen out of its way,
once the command has loaded what it needs (:func:`watchtower.cli.startup_done`).
glibc's malloc arenas are capped first (:mod:`watchtower.malloc`). Pydantic's plugin
discovery, which reads the entry points of every installed distribution, is switched
off (``PYDANTIC_DISABLE_PLUGINS``, unless the environment sets it): Watchtower uses no
pydantic plugin.
"""

from __future__ import annotations

import gc
import os


def main() -> None:
    """Run the command line (the ``watchtower`` console script)."""
    gc.disable()
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from watchtower.malloc import limit_arenas

    limit_arenas()  # before any thread starts
    from watchtower.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
