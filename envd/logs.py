"""Process-level logging setup shared by the thin mains (daemon, agent, client)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(level: str | int) -> None:
    """Logs go to stderr: stdout belongs to results (and to `--json` documents)."""
    logging.basicConfig(level=level, stream=sys.stderr, format=LOG_FORMAT)


def report_error(message: str, hint: str | None, style: Callable[[str], str] = str) -> None:
    """The one way a command line prints a user error: `error: …` then `hint: …`; `style`
    draws those two words (a terminal's colours)."""
    print(f"{style('error:')} {message}", file=sys.stderr)
    if hint:
        print(f"{style('hint:')} {hint}", file=sys.stderr)
