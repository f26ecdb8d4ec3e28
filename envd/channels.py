"""Where a channel named in a spec lives: names go through the channel alias, URLs stay."""

from __future__ import annotations

DEFAULT_CHANNEL_ALIAS = "https://conda.anaconda.org"


def channel_url(channel: str, alias: str = DEFAULT_CHANNEL_ALIAS) -> str:
    """`conda-forge` → `<alias>/conda-forge`; `file://`, `http(s)://` URLs are returned as is."""
    if "://" in channel:
        return channel.rstrip("/")
    return f"{alias.rstrip('/')}/{channel.strip('/')}"
