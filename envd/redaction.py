"""Secrets never reach logs, state, descriptions or output. Two tools: URLs *shown* (in a
spec, a description, an error) keep their user name but mask the password
(`https://user:***@host/simple`); store URLs, which are written to state and logs, are refused
when they carry credentials, and shown without user info, token segments or query strings."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from envd.errors import StoreError

MASK = "***"
# a URL with user info: scheme, `//`, then `user[:password]@` before the host
_USERINFO_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@'\"`<>]+@[^\s'\"`<>]*")


def split_url(url: str) -> SplitResult | None:
    """`urlsplit`, or None for a URL it refuses (an unbalanced `[` raises ValueError)."""
    try:
        return urlsplit(url)
    except ValueError:
        return None


def mask_url(url: str) -> str:
    """`url` with its password masked (`user:***@`); a user name alone is masked too, being
    often a token (`***@host`). A URL without user info is returned as it is."""
    parts = split_url(url)
    if parts is None:  # can't be taken apart: mask everything between `//` and the last `@`
        return re.sub(r"//[^/]*@", f"//{MASK}@", url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    if not colon and user == "git":  # `git+ssh://git@host/…`: ssh's user, not a secret
        return url
    shown = f"{user}:{MASK}" if colon else MASK
    return urlunsplit((parts.scheme, f"{shown}@{host}", parts.path, parts.query, parts.fragment))


def mask_text(text: str) -> str:
    """`text` (a requirement, a message) with the credentials of every URL in it masked."""
    if "@" not in text:
        return text
    return _USERINFO_URL.sub(lambda match: mask_url(match.group()), text)


LOG_TAIL = 2000  # characters of a tool's output quoted in an error message


def tail(text: str, limit: int = LOG_TAIL) -> str:
    """The last `limit` characters of a tool's output (already masked), `…` where cut."""
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def masked(document: Any) -> Any:
    """A JSON document (a spec, a description, a result) with every string masked."""
    if isinstance(document, str):
        return mask_text(document)
    if isinstance(document, dict):
        return {key: masked(value) for key, value in document.items()}
    if isinstance(document, list | tuple):
        return [masked(value) for value in document]
    return document


# anaconda.org-style `/t/<token>/` URL segments
CONDA_TOKEN = re.compile(r"/t/[^/]+/")


def redact_url(url: str) -> str:
    """`url` without user info, `/t/<token>/` segments or a query: safe to show."""
    parts = split_url(url)
    if parts is None:
        return url.partition("://")[0] + "://…"
    netloc = parts.netloc.rpartition("@")[2]
    path = CONDA_TOKEN.sub("/t/<token>/", parts.path)
    query = "…" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def has_credentials(url: str) -> bool:
    parts = split_url(url)
    if parts is None:
        return "@" in url  # can't tell where the host is: any `@` may be user info
    return "@" in parts.netloc or bool(CONDA_TOKEN.search(parts.path))


def refuse_store_credentials(url: str, hint: str) -> None:
    """A store URL is written into state, logs and the agents' welcome: credentials in it
    are refused, and the refusal doesn't repeat them."""
    parts = split_url(url)
    if parts is None:
        raise StoreError(f"failed to open store `{redact_url(url)}`: not a valid URL", hint=hint)
    if has_credentials(url) or parts.query:
        raise StoreError(
            f"failed to open store `{redact_url(url)}`: the URL carries credentials or a "
            "query; they would be written to logs and state",
            hint=hint,
        )
