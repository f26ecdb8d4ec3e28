"""Which channels a coordinator lets its agents read: http(s) and the alias's names by default,
`file://` and folders only under directories the operator lists (the embedded default allows
them, being the user's own machine). Errors never say anything about files outside them.

PyPI locations — index URLs (PyPI itself when a spec names none), `--find-links` locations
and direct requirement URLs (`name @ https://…`, `git+https://…`) — follow the same rules with
their own patterns (`--allow-pypi-index`): any http(s) URL by default, `file://` only under the
local directories, and `envd-source://` (a local source the client packed into the store)
always."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packaging.requirements import Requirement
from rattler import MatchSpec

from envd.channels import DEFAULT_CHANNEL_ALIAS, channel_url
from envd.errors import ChannelNotAllowedError
from envd.redaction import mask_text, mask_url
from envd.requirements_txt import DEFAULT_INDEX_URL
from envd.spec import ENVD_SOURCE_SCHEME, Spec

WEB_SCHEMES = ("http", "https")


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    # fnmatch patterns over channel URLs (names are matched as they are and as URLs);
    # empty: any http(s) channel and any name
    allow: tuple[str, ...] = ()
    # folders whose `file://` channels are allowed (resolved, symlinks followed)
    local_dirs: tuple[Path, ...] = ()
    any_local: bool = False
    channel_alias: str = DEFAULT_CHANNEL_ALIAS
    # fnmatch patterns over PyPI index, find-links and direct URLs; empty: any http(s) URL
    allow_pypi: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, allow: Iterable[str] = (), local_dirs: Iterable[Path] = (), *, any_local: bool = False,
        allow_pypi: Iterable[str] = (),
    ) -> ChannelPolicy:  # fmt: skip
        dirs = tuple(Path(d).resolve() for d in local_dirs)
        return cls(tuple(allow), dirs, any_local, allow_pypi=tuple(allow_pypi))

    def check_pypi(self, kind: str, url: str) -> None:
        """Refuse a PyPI location (`kind`: "PyPI index", "find-links location", "requirement
        URL") the policy does not allow; the refusal shows the URL masked and the policy."""
        scheme = urlsplit(url).scheme.lower() if "://" in url else ""
        plain = url.split("+", 1)[1] if scheme.startswith(("git+", "hg+", "svn+", "bzr+")) else url
        inner = urlsplit(plain).scheme.lower() if "://" in plain else ""
        if scheme == ENVD_SOURCE_SCHEME:
            return
        if inner == "file":
            if not self._local_allowed(plain):
                raise _pypi_refused(kind, url, "local files are only allowed under the "
                                    "directories the coordinator lists (`--allow-local-channels`)")  # fmt: skip
            return
        if inner not in WEB_SCHEMES:
            raise _pypi_refused(kind, url, f"`{scheme or 'a bare path'}` is not an http(s) URL")
        if self.allow_pypi and not any(
            fnmatch.fnmatchcase(candidate, pattern)
            for pattern in self.allow_pypi
            for candidate in (url, plain)
        ):
            patterns = ", ".join(f"`{p}`" for p in self.allow_pypi)
            raise _pypi_refused(kind, url, f"it matches no `--allow-pypi-index` pattern of the "
                                f"coordinator ({patterns})")  # fmt: skip

    def check_pypi_spec(self, spec: Spec) -> None:
        """Every PyPI location of a spec (nothing for a spec without PyPI dependencies)."""
        for kind, url in pypi_locations(spec):
            self.check_pypi(kind, url)

    def check_locked(self, spec: Spec) -> None:
        """Every archive URL of an imported lock (`spec.locked`, the packages of each platform
        the coordinator holds): a conda package's lies in a channel the policy allows, a PyPI
        package's is allowed as a PyPI location. Each URL is checked, not only the channels
        derived from them: a lock names files, and `..` never walks out of an allowed place."""
        allowed: set[str] = set()  # channels checked already: the policy once per channel
        for entry in spec.locked:
            for package in entry.packages:
                if _has_dot_segment(package.url):
                    raise _locked_refused(package.url, "its path has `.` or `..` segments")
                if package.kind == "pypi":
                    self.check_pypi("locked PyPI file", package.url)
                    continue
                try:
                    if package.channel not in allowed:
                        self.check(package.channel)
                        allowed.add(package.channel)
                    check_archive_url(package.channel, package.url)
                except ChannelNotAllowedError as err:
                    why = mask_text(err.message).replace(" by this coordinator", "", 1)
                    raise _locked_refused(package.url, f"its {why}") from err

    def check(self, channel: str) -> None:
        """Refuse a channel the policy does not allow (ChannelNotAllowedError)."""
        url = channel_url(channel, self.channel_alias)
        scheme = urlsplit(url).scheme
        if scheme == "file":
            if not self._local_allowed(url):
                raise _refused(channel, "local channels are only allowed under the "
                               "directories the coordinator lists (`--allow-local-channels`)")  # fmt: skip
            return
        if scheme not in WEB_SCHEMES:
            raise _refused(channel, f"`{scheme}` is not a channel scheme (http, https, file)")
        if self.allow and not any(
            fnmatch.fnmatchcase(candidate, pattern)
            for pattern in self.allow
            for candidate in (channel, url)
        ):
            raise _refused(channel, "it matches no `--allow-channel` pattern of the coordinator")

    def _local_allowed(self, url: str) -> bool:
        if self.any_local:
            return True
        path = _resolved(urlsplit(url).path)
        return path is not None and any(path.is_relative_to(d) for d in self.local_dirs)


def spec_channels(spec: Spec) -> list[str]:
    """Every channel a spec names: its channel list and each `channel::package` (names as
    written, URLs as URLs)."""
    found = list(spec.channels)
    for dep in spec.conda:
        channel = MatchSpec(dep.spec).channel
        if channel is None:
            continue
        named = dep.spec.split("::", 1)[0]
        found.append(
            named if "::" in dep.spec and "://" not in named else str(channel.base_url).rstrip("/")
        )
    return list(dict.fromkeys(found))


def pypi_locations(spec: Spec) -> list[tuple[str, str]]:
    """Where an agent's uv would fetch from for this spec: its indexes (PyPI when none),
    `--find-links` locations, and the URLs of direct requirements."""
    if not spec.pypi:
        return []
    found = [("PyPI index", url) for url in spec.pypi_indexes or (DEFAULT_INDEX_URL,)]
    found += [("find-links location", url) for url in spec.pypi_find_links]
    for dep in spec.pypi:
        url = Requirement(dep.requirement).url
        if url:
            found.append(("requirement URL", url))
    return list(dict.fromkeys(found))


def _pypi_refused(kind: str, url: str, why: str) -> ChannelNotAllowedError:
    return ChannelNotAllowedError(
        f"{kind} `{mask_url(url)}` is not allowed by this coordinator: {why}",
        hint="ask its operator, or use an index or URL it allows",
    )


def _locked_refused(url: str, why: str) -> ChannelNotAllowedError:
    return ChannelNotAllowedError(
        f"locked package URL `{mask_url(url)}` is not allowed by this coordinator: {why}",
        hint="ask its operator, or lock the environment against channels and indexes it allows",
    )


def _has_dot_segment(url: str) -> bool:
    return any(part in (".", "..") for part in unquote(urlsplit(url).path).split("/"))


def _resolved(url_path: str) -> Path | None:
    """The file a URL's path names, symlinks followed; None when the system refuses it (a
    symlink loop, a name too long): refused then, never an exception."""
    try:
        return Path(unquote(url_path)).resolve()
    except (OSError, RuntimeError):  # RuntimeError: Python 3.11's symlink loop
        return None


def _refused(channel: str, why: str) -> ChannelNotAllowedError:
    # only the user's own input is echoed: nothing is looked up on disk before refusing
    return ChannelNotAllowedError(
        f"channel `{channel}` is not allowed by this coordinator: {why}",
        hint="ask its operator, or use a channel it allows",
    )


def check_archive_url(channel: str, url: str) -> None:
    """An archive URL that a channel's repodata (its `base_url`) points at must stay where the
    channel is: same scheme, host and port, and for a local channel inside its folder — no
    redirect to another host or to local files."""
    base, target = urlsplit(channel), urlsplit(url)
    same_origin = (base.scheme, base.netloc) == (target.scheme, target.netloc)
    if same_origin and base.scheme in WEB_SCHEMES:
        return
    if same_origin and base.scheme == "file":
        folder, path = _resolved(base.path), _resolved(target.path)
        if folder is not None and path is not None and path.is_relative_to(folder):
            return
    raise ChannelNotAllowedError(
        f"an archive URL in the repodata of channel `{channel}` points outside the channel",
        hint="the channel's `base_url` must point at the channel's own host (or folder)",
    )
