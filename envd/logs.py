"""Process-level logging setup shared by the thin mains (daemon, agent, client)."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(level: str | int) -> None:
    """Logs go to stderr: stdout belongs to results (and to `--json` documents)."""
    logging.basicConfig(level=level, stream=sys.stderr, format=LOG_FORMAT)


def report_error(message: str, hint: str | None) -> None:
    """The one way a command line prints a user error: `error: …` then `hint: …`."""
    print(f"error: {message}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
