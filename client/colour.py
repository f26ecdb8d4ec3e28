"""Terminal colour: on for a TTY, off with `NO_COLOR` (https://no-color.org) or when piped."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}
# What each outcome or status word is drawn in; anything else stays plain.
WORD_STYLES = {
    "cache_hit": "green",
    "resolved": "green",
    "dedup": "green",
    "failed": "red",
    "error:": "red",
    "hint:": "cyan",
}


def colour_enabled(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Palette:
    """Wraps text in ANSI styles when enabled; returns it unchanged otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, stream: TextIO, environ: Mapping[str, str] | None = None) -> Palette:
        return cls(colour_enabled(stream, environ))

    def style(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles or not text:
            return text
        codes = ";".join(_CODES[s] for s in styles)
        return f"\033[{codes}m{text}\033[0m"

    def word(self, text: str) -> str:
        """An outcome word (`resolved`, `failed`, …) in its colour."""
        style = WORD_STYLES.get(text)
        return self.style(text, style, "bold") if style else text
