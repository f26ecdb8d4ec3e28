"""Process-level logging setup shared by the thin mains (daemon, agent, client)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from envd.redaction import mask_text

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(level: str | int) -> None:
    """Logs go to stderr: stdout belongs to results (and to `--json` documents)."""
    logging.basicConfig(level=level, stream=sys.stderr, format=LOG_FORMAT)


def report_error(message: str, hint: str | None, style: Callable[[str], str] = str) -> None:
    """The one way a command line prints a user error: `error: …` then `hint: …`; `style`
    draws those two words (a terminal's colours). A URL's password in them (a PyPI index
    quoted from a requirements file) is masked."""
    print(f"{style('error:')} {mask_text(message)}", file=sys.stderr)
    if hint:
        print(f"{style('hint:')} {mask_text(hint)}", file=sys.stderr)
