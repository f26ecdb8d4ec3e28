"""Secrets never reach logs, state, descriptions or output: URLs are shown without user info,
conda `/t/<token>/` segments or query strings (SAS tokens, presigned signatures)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from envd.errors import StoreError

_CONDA_TOKEN = re.compile(r"/t/[^/]+/")


def redact_url(url: str) -> str:
    """`url` without user info, `/t/<token>/` segments or a query: safe to show."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    path = _CONDA_TOKEN.sub("/t/<token>/", parts.path)
    query = "…" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def has_credentials(url: str) -> bool:
    parts = urlsplit(url)
    return "@" in parts.netloc or bool(_CONDA_TOKEN.search(parts.path))


def refuse_store_credentials(url: str, hint: str) -> None:
    """A store URL is written into state, logs and the agents' welcome: credentials in it
    are refused, and the refusal doesn't repeat them."""
    parts = urlsplit(url)
    if has_credentials(url) or parts.query:
        raise StoreError(
            f"failed to open store `{redact_url(url)}`: the URL carries credentials or a "
            "query; they would be written to logs and state",
            hint=hint,
        )
