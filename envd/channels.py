"""Where a channel named in a spec lives: names go through the channel alias, URLs stay."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def _settings() -> dict[str, Any]:
    text = resources.files("envd.data").joinpath("channels.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


DEFAULT_CHANNEL_ALIAS: str = _settings()["channel_alias"]


def channel_url(channel: str, alias: str = DEFAULT_CHANNEL_ALIAS) -> str:
    """`conda-forge` → `<alias>/conda-forge` (or its custom URL); `file://`, `http(s)://`
    URLs are returned as they are."""
    if "://" in channel:
        return channel.rstrip("/")
    name = channel.strip("/")
    custom: dict[str, str] = _settings()["custom_channels"]
    if name in custom:
        return custom[name].rstrip("/")
    return f"{alias.rstrip('/')}/{name}"
