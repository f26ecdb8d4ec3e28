"""Fetching archives from channels: streamed to a file, hashed on the way, retried when transient.

Channels are `http(s)://` URLs, `file://` URLs or local folders. Credentials for private channels
(`ChannelCredentials`: a netrc file or `ENVD_CHANNEL_TOKEN`, by host and port, over https unless
the origin is marked plain-http) only ever travel in an `Authorization` header that is not
repeated on redirects: they never appear in a URL, a log line or an error.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import random
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

import envd
from envd.errors import ChannelError, StageTimeoutError
from envd.redaction import CONDA_TOKEN as _CONDA_TOKEN

from .credentials import TOKEN_ENV, ChannelCredentials

log = logging.getLogger("envd.agent")
CHUNK = 1024 * 1024
DEFAULT_ATTEMPTS = 4
DEFAULT_BASE_DELAY = 0.25
# seconds an attempt may wait for the next bytes (connect, headers, body): with 4 attempts a
# host that stalls fails the archive in about 80 s
DEFAULT_TIMEOUT = 20.0
MAX_DELAY = 5.0
TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s()<>'\"`]+")
_FETCH_HINT = "check that the channel still serves it, or resolve with `--no-archives`"


class FetchCancelled(Exception):
    """The caller gave up on this download (another archive of the job failed, or the job was
    cancelled)."""


class _Source(Protocol):
    def read1(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Fetched:
    """A downloaded file and what its bytes hash to."""

    path: Path
    sha256: str
    md5: str
    size: int


def redact_url(url: str) -> str:
    """`url` without user info or `/t/<token>/` segments: safe for logs and errors."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    path = _CONDA_TOKEN.sub("/t/<token>/", parts.path)
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def redact_text(text: str) -> str:
    """`text` (a library's error message) with every URL in it redacted."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group()), text)


class Fetcher:
    """Downloads one URL at a time into a file; safe to share between threads.

    `timeout` bounds each wait for bytes (connecting, the headers, every read), so a host that
    accepts and never answers costs `attempts * timeout` plus backoff, then `StageTimeoutError`
    naming the URL. A set `cancel` event stops the download within one read and retries no
    more."""

    def __init__(
        self,
        credentials: ChannelCredentials | None = None,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        base_delay: float = DEFAULT_BASE_DELAY,
        timeout: float = DEFAULT_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.credentials = credentials or ChannelCredentials()
        self.attempts = max(1, attempts)
        self.base_delay = base_delay
        self.timeout = timeout
        self.sleep = sleep

    def fetch(
        self,
        url: str,
        dest: Path,
        *,
        max_size: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Fetched:
        """Stream `url` into `dest` (via `dest.part`), hashing as it goes. Reading stops after
        `max_size + 1` bytes, so a server cannot fill the disk; the caller compares sizes."""
        scheme = urlsplit(url).scheme.lower()
        if scheme in ("http", "https"):
            return self._with_retries(
                url, lambda: self._fetch_http(url, dest, max_size, cancel), cancel
            )
        if scheme == "file" or len(scheme) <= 1:  # `C:\…` parses as scheme `c`
            return self._fetch_local(url, dest, max_size, cancel)
        raise ChannelError(
            f"failed to fetch archive `{redact_url(url)}`: scheme `{scheme}` is not supported",
            hint="channels are `https://`, `http://`, `file://` URLs or local folders",
        )

    def _with_retries(
        self, url: str, attempt: Callable[[], Fetched], cancel: threading.Event | None
    ) -> Fetched:
        shown = redact_url(url)
        for number in range(1, self.attempts + 1):
            if cancel is not None and cancel.is_set():
                raise FetchCancelled(shown)
            try:
                return attempt()
            except urllib.error.HTTPError as err:
                err.close()  # its body is an open response
                if err.code not in TRANSIENT_HTTP or number == self.attempts:
                    raise _http_error(shown, err) from err
                cause = f"HTTP {err.code}"
            except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
                if number == self.attempts and _timed_out(err):
                    raise StageTimeoutError(
                        f"timed out fetching archive `{shown}`: no data for {self.timeout:g} s "
                        f"(attempt {number} of {self.attempts})",
                        hint="check that the channel's host answers; if it is only slow, raise "
                        "the agent's `--fetch-timeout`",
                    ) from err
                if number == self.attempts:
                    raise ChannelError(
                        f"failed to fetch archive `{shown}` after {number} attempts: "
                        f"{_reason(err)}",
                        hint=_FETCH_HINT,
                    ) from err
                cause = _reason(err)
            delay = min(MAX_DELAY, self.base_delay * 2 ** (number - 1)) * (0.5 + random.random())
            log.warning("retrying %s (attempt %d/%d) in %.2fs: %s", shown, number,
                        self.attempts, delay, cause)  # fmt: skip
            self.sleep(delay)
        raise AssertionError("unreachable")

    def _fetch_http(
        self, url: str, dest: Path, max_size: int | None, cancel: threading.Event | None
    ) -> Fetched:
        request = urllib.request.Request(url, headers={
            "User-Agent": f"envd/{envd.__version__}", "Accept-Encoding": "identity",
        })  # fmt: skip
        authorization = self.credentials.authorization(url)
        if authorization is not None:
            # unredirected: a redirect to another host (a CDN, a signed URL) never carries it
            request.add_unredirected_header("Authorization", authorization)
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            announced = response.headers.get("Content-Length")
            fetched = _stream(response, dest, max_size, cancel)
        # http.client ends a chunked read quietly when the connection drops: a short body is
        # a transient failure to retry, not a different archive
        if announced is not None and announced.isdigit() and fetched.size < int(announced):
            if max_size is None or fetched.size <= max_size:
                dest.unlink(missing_ok=True)
                raise http.client.IncompleteRead(b"", int(announced) - fetched.size)
        return fetched

    def _fetch_local(
        self, url: str, dest: Path, max_size: int | None, cancel: threading.Event | None
    ) -> Fetched:
        path = local_path(url)
        try:
            with path.open("rb") as source:
                return _stream(source, dest, max_size, cancel)
        except FileNotFoundError as err:
            raise ChannelError(
                f"failed to fetch archive `{url}`: no such file `{path}`", hint=_FETCH_HINT
            ) from err
        except OSError as err:
            raise ChannelError(
                f"failed to fetch archive `{url}`: {_reason(err)}", hint=_FETCH_HINT
            ) from err


def local_path(url: str) -> Path:
    """The file a `file://` URL (or a plain path) names."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        return Path(url)
    if parts.netloc not in ("", "localhost"):
        return Path(f"//{parts.netloc}{unquote(parts.path)}")
    return Path(urllib.request.url2pathname(parts.path))


def _stream(
    source: _Source, dest: Path, max_size: int | None, cancel: threading.Event | None
) -> Fetched:
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    limit = None if max_size is None else max_size + 1
    size = 0
    part = dest.with_name(dest.name + ".part")
    try:
        with part.open("wb") as out:
            while limit is None or size < limit:
                if cancel is not None and cancel.is_set():
                    raise FetchCancelled(dest.name)
                want = CHUNK if limit is None else min(CHUNK, limit - size)
                chunk = source.read1(want)  # what has arrived: a slow host still sees `cancel`
                if not chunk:
                    break
                sha256.update(chunk)
                md5.update(chunk)
                out.write(chunk)
                size += len(chunk)
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return Fetched(dest, sha256.hexdigest(), md5.hexdigest(), size)


def _http_error(shown: str, err: urllib.error.HTTPError) -> ChannelError:
    hint = _FETCH_HINT
    if err.code in (401, 403):
        hint = (
            "the channel wants credentials: add its host to the agent's netrc file or to "
            f"`{TOKEN_ENV}` (`HOST[:PORT]=TOKEN`)"
        )
        if urlsplit(shown).scheme == "http":
            hint += "; over plain http they go only to hosts the agent marks with "
            hint += "`--plain-http-host HOST[:PORT]`"
    return ChannelError(f"failed to fetch archive `{shown}`: HTTP {err.code} {err.reason}", hint)


def _timed_out(err: BaseException) -> bool:
    """A socket timeout, raised as is (reading the body) or wrapped by urllib (connecting,
    reading the headers)."""
    if isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError):
        return isinstance(err.reason, TimeoutError)
    return isinstance(err, TimeoutError)


def _reason(err: BaseException) -> str:
    if isinstance(err, http.client.IncompleteRead):
        return f"the connection closed {err.expected} bytes short of the end"
    if isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError):
        inner = err.reason
        return inner.strerror or str(inner) if isinstance(inner, OSError) else str(inner)
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
