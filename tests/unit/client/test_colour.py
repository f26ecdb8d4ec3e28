"""Colour only on a terminal, and never with NO_COLOR."""

from __future__ import annotations

import io
import os
import pty

from envd.client.colour import Palette, colour_enabled


def test_colour_follows_the_terminal_and_no_color() -> None:
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            assert colour_enabled(terminal, {}) is True
            assert colour_enabled(terminal, {"NO_COLOR": "1"}) is False
            assert colour_enabled(terminal, {"NO_COLOR": ""}) is True  # empty: not set
    finally:
        os.close(leader)
        os.close(follower)
    assert colour_enabled(io.StringIO(), {}) is False


def test_palette_words() -> None:
    on, off = Palette(True), Palette(False)
    assert on.word("failed") == "\033[31;1mfailed\033[0m"
    assert on.word("cache_hit") == "\033[32;1mcache_hit\033[0m"
    assert on.word("queued") == "queued"
    assert on.style("x", "yellow") == "\033[33mx\033[0m"
    assert off.word("failed") == "failed" and off.style("x", "bold") == "x"
