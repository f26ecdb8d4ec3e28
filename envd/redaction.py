"""Credentials in URLs (a PyPI index's password, a token as user name) masked wherever envd
shows a spec or a description: `https://user:***@host/simple`."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# a URL with user info: scheme, `//`, then `user[:password]@` before the host
_USERINFO_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@'\"`<>]+@[^\s'\"`<>]*")


def mask_url(url: str) -> str:
    """`url` with its password masked (`user:***@`); a user name alone is masked too, being
    often a token (`***@host`). A URL without user info is returned as it is."""
    parts = urlsplit(url)
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


def masked(document: Any) -> Any:
    """A JSON document (a spec, a description, a result) with every string masked."""
    if isinstance(document, str):
        return mask_text(document)
    if isinstance(document, dict):
        return {key: masked(value) for key, value in document.items()}
    if isinstance(document, list | tuple):
        return [masked(value) for value in document]
    return document
