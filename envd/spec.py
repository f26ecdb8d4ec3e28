"""The spec: what a user asked for, normalized into one canonical, hashable form."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from rattler import MatchSpec, VersionSpec

from envd.errors import InvalidSpecError
from envd.locks import (
    LockedPlatform,
    check_locked,
    locked_channels,
    locked_from_canonical,
    locked_to_canonical,
)
from envd.markers import applies
from envd.platforms import SELECTOR_WORDS, selector_matches
from envd.redaction import CONDA_TOKEN, mask_url, split_url

CANONICAL_FORMAT = "envd-spec-v1"
DEFAULT_CATEGORY = "main"
# Channels conda-lock drops because envd always overrides channels.
_IGNORED_CHANNELS = frozenset({"nodefaults"})
# A local directory or file packed by the client and stored at `pkgs/<sha256>/<filename>`:
# `name @ envd-source://sha256/<hex>/<filename>` (docs/architecture.md "Local sources").
ENVD_SOURCE_SCHEME = "envd-source"
_SOURCE_URL = re.compile(r"^envd-source://sha256/([0-9a-f]{64})/([^/?#]+)$")
_CREDENTIALS_HINT = (
    "give agents the login in their netrc file (`$NETRC` or `~/.netrc`, `machine HOST login "
    "USER password SECRET`), never in the spec"
)


class EnvType(StrEnum):
    CONDA_ONLY = "conda-only"
    PYPI_ONLY = "pypi-only"
    MIXED = "mixed"


@dataclass(frozen=True, slots=True, order=True)
class CondaDependency:
    """One conda MatchSpec, in rattler's normalized string form."""

    name: str
    spec: str
    category: str = DEFAULT_CATEGORY
    selector: str | None = None


@dataclass(frozen=True, slots=True, order=True)
class PypiDependency:
    """One PEP 508 requirement, normalized with `packaging` (PEP 503 name, sorted specifiers)."""

    name: str
    requirement: str
    category: str = DEFAULT_CATEGORY
    selector: str | None = None


@dataclass(frozen=True, slots=True)
class Spec:
    """A normalized request, platforms excluded. Build it with `normalize_spec`."""

    conda: tuple[CondaDependency, ...] = ()
    pypi: tuple[PypiDependency, ...] = ()
    python: str | None = None
    channels: tuple[str, ...] = ()
    pypi_indexes: tuple[str, ...] = ()
    virtual_packages: tuple[tuple[str, str], ...] = ()
    exclude_newer: str | None = None
    # `-f/--find-links` pages (http(s) URLs of flat pages of archive links), in order
    pypi_find_links: tuple[str, ...] = ()
    # an imported lock (envd.locks): the packages of each of its platforms, taken as they are
    locked: tuple[LockedPlatform, ...] = ()
    # the serialized forms, made once per Spec (it is frozen): None the canonical bytes (hashed
    # into req_id), a platform that platform's job bytes (a lock's differ per platform)
    _bytes: dict[str | None, bytes] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def env_type(self) -> EnvType:
        if self.locked:
            kinds = {kind for lp in self.locked for kind in lp.kinds()}
            if kinds == {"pypi"}:
                return EnvType.PYPI_ONLY
            return EnvType.MIXED if "pypi" in kinds else EnvType.CONDA_ONLY
        if self.pypi and self.conda:
            return EnvType.MIXED
        if self.pypi:
            return EnvType.PYPI_ONLY
        return EnvType.CONDA_ONLY

    def conda_specs_for(self, platform: str) -> list[str]:
        """The MatchSpecs to solve on `platform`: selectors applied, python added, sorted."""
        specs = [d.spec for d in self.conda if selector_matches(d.selector, platform)]
        if self.python is not None and self.env_type is not EnvType.PYPI_ONLY:
            specs.append(f"python {self.python}")
        return sorted(specs)

    def pypi_requirements_for(self, platform: str) -> list[str]:
        """PyPI requirements that apply on `platform`: selectors applied, and markers that are
        decidably false there dropped (see envd.markers); the text keeps its marker."""
        return sorted(
            d.requirement
            for d in self.pypi
            if selector_matches(d.selector, platform)
            and applies(_marker(d.requirement), platform, self.python)
        )

    def to_canonical(self) -> dict[str, Any]:
        canonical = self._canonical_request()
        if self.locked:  # only then: every req_id without a lock stays what it was
            canonical["locked"] = locked_to_canonical(self.locked)
        return canonical

    def job_bytes(self, platform: str) -> bytes:
        """What a job for `platform` carries: the canonical spec, with a lock's packages for
        that platform in place of their summary (the agent recomputes the same req_id).
        Serialized once per platform; without a lock, the canonical bytes themselves."""
        if not self.locked:
            return self.canonical_bytes()
        made = self._bytes.get(platform)
        if made is None:
            canonical = self._canonical_request()
            canonical["locked"] = locked_to_canonical(self.locked, full=platform)
            made = self._bytes[platform] = canonical_json(canonical)
        return made

    def _canonical_request(self) -> dict[str, Any]:
        canonical: dict[str, Any] = {
            "format": CANONICAL_FORMAT,
            "env_type": str(self.env_type),
            "python": self.python,
            "conda": [
                {"name": d.name, "spec": d.spec, "category": d.category, "selector": d.selector}
                for d in self.conda
            ],
            "pypi": [
                {
                    "name": d.name,
                    "requirement": d.requirement,
                    "category": d.category,
                    "selector": d.selector,
                }
                for d in self.pypi
            ],
            "channels": list(self.channels),
            "pypi_indexes": list(self.pypi_indexes),
            "virtual_packages": dict(self.virtual_packages),
            "exclude_newer": self.exclude_newer,
        }
        if self.pypi_find_links:  # only then: every req_id without find-links stays the same
            canonical["pypi_find_links"] = list(self.pypi_find_links)
        return canonical

    def canonical_bytes(self) -> bytes:
        """The exact bytes hashed into req_id (documented in docs/ids.md), serialized once."""
        made = self._bytes.get(None)
        if made is None:
            made = self._bytes[None] = canonical_json(self.to_canonical())
        return made


def _marker(requirement: str) -> str | None:
    marker = Requirement(requirement).marker
    return str(marker) if marker is not None else None


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: one byte string per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class RawDependency:
    """A dependency as written, with where it came from (for errors) and its platform guard."""

    text: str
    source: str = "<inline>"
    line: int | None = None
    category: str = DEFAULT_CATEGORY
    selector: str | None = None

    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line is not None else self.source


@dataclass(slots=True)
class RawSpec:
    """What the parsers collect before normalization (files and inline options merged)."""

    conda: list[RawDependency] = field(default_factory=list)
    pypi: list[RawDependency] = field(default_factory=list)
    python: str | None = None
    channels: list[str] = field(default_factory=list)
    pypi_indexes: list[str] = field(default_factory=list)
    virtual_packages: dict[str, str] = field(default_factory=dict)
    platforms: list[str] = field(default_factory=list)
    exclude_newer: str | None = None
    locked: list[LockedPlatform] = field(default_factory=list)
    pypi_find_links: list[str] = field(default_factory=list)


def normalize_exclude_newer(text: str, where: str = "--exclude-newer") -> str:
    """An RFC 3339 time (any offset) or a date (midnight UTC), as `YYYY-MM-DDTHH:MM:SSZ` in
    UTC: one spelling per moment, so the req_id does not depend on how it was written."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as err:
        raise InvalidSpecError(
            f"failed to parse `{text}` at {where}: not an RFC 3339 time or a date",
            hint="write e.g. `2024-06-01` or `2024-06-01T12:00:00Z`",
        ) from err
    if len(value) == len("2024-06-01"):
        moment = moment.replace(tzinfo=UTC)
    if moment.tzinfo is None:
        raise InvalidSpecError(
            f"failed to parse `{text}` at {where}: the time has no timezone",
            hint="end it with `Z` (UTC) or an offset such as `+02:00`",
        )
    utc = moment.astimezone(UTC)
    micro = f".{utc.microsecond:06d}" if utc.microsecond else ""
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + micro + "Z"


def normalize_python(text: str, where: str = "--python") -> str:
    """`3.8` means `3.8.*` (as `python=3.8` does in conda), and so does each bare version
    between `|` (`3.9|3.10` is `3.9.*|3.10.*`); anything else is a VersionSpec."""
    value = "|".join(_series(alternative.strip()) for alternative in text.split("|"))
    try:
        return str(VersionSpec(value))
    except Exception as err:
        raise InvalidSpecError(
            f"failed to parse python constraint `{text}` at {where}: {err}",
            hint="use a version such as `3.11` or a constraint such as `>=3.9,<3.12`",
        ) from err


def _series(version: str) -> str:
    """A bare version (`3.8`) is its series (`3.8.*`); anything else stays as it is."""
    if all(part.isdigit() for part in version.split(".")):
        return f"{version}.*"
    return version


def normalize_conda(dep: RawDependency) -> CondaDependency:
    try:
        match = MatchSpec(dep.text.strip())
    except Exception as err:
        raise InvalidSpecError(
            f"failed to parse conda spec `{dep.text}` at {dep.where()}: {err}",
            hint="write a MatchSpec such as `numpy >=1.20` or `python=3.11`",
        ) from err
    if match.name is None:
        raise InvalidSpecError(f"conda spec `{dep.text}` at {dep.where()} names no package")
    if match.channel is not None:  # `URL::name`: as stored and shown as a `-c URL` would be
        _refuse_credentials(str(match.channel.base_url))
    _check_selector(dep)
    return CondaDependency(match.name.normalized, str(match), dep.category, dep.selector)


def normalize_pypi(dep: RawDependency) -> PypiDependency:
    try:
        req = Requirement(dep.text.strip())
    except InvalidRequirement as err:
        raise InvalidSpecError(
            f"failed to parse PyPI requirement `{dep.text}` at {dep.where()}: {err}",
            hint="write a PEP 508 requirement such as `requests>=2.31`",
        ) from err
    _check_selector(dep)
    if req.url:
        _check_pypi_url(req.url, dep)
    name = canonicalize_name(req.name)
    text: str = name
    if req.extras:
        text += "[" + ",".join(sorted(canonicalize_name(e) for e in req.extras)) + "]"
    if req.url:
        text += f" @ {req.url}"
    specifiers = ",".join(sorted(str(s) for s in req.specifier))
    text += specifiers
    if req.marker is not None:
        # PEP 508: a URL must be followed by whitespace before `;`, or the text won't reparse.
        text += f" ; {req.marker}" if req.url else f"; {req.marker}"
    return PypiDependency(name, text, dep.category, dep.selector)


def source_url(sha256: str, filename: str) -> str:
    """The spec's reference to a packed local source in the store."""
    return f"{ENVD_SOURCE_SCHEME}://sha256/{sha256}/{quote(filename)}"


def parse_source_url(url: str) -> tuple[str, str] | None:
    """`(sha256, filename)` of an `envd-source://` URL; None for any other URL; a malformed one
    is `InvalidSpecError`."""
    if not url.startswith(f"{ENVD_SOURCE_SCHEME}:"):
        return None
    match = _SOURCE_URL.match(url)
    filename = unquote(match.group(2)) if match else ""
    if match is None or "/" in filename or filename in {".", ".."}:
        raise InvalidSpecError(
            f"failed to read local source `{url}`: expected "
            f"`{ENVD_SOURCE_SCHEME}://sha256/<64 hex digits>/<filename>`",
            hint="envd-client writes these URLs when it packs a local directory or file",
        )
    return match.group(1), filename


def is_local_url(url: str) -> bool:
    """A requirement URL naming a file of the sender's machine (`file:` or a bare path)."""
    scheme = url.partition(":")[0].lower() if ":" in url.split("/", 1)[0] else ""
    return scheme in {"", "file"}


def _check_pypi_url(url: str, dep: RawDependency) -> None:
    """A direct URL carries no credentials (they would be hashed, stored and shown) and names
    no bare path (only `file://` URLs, which the client packs, or `envd-source://`)."""
    parse_source_url(url)
    if is_local_url(url) and not url.lower().startswith("file:"):
        raise InvalidSpecError(
            f"failed to parse PyPI requirement `{dep.text}` at {dep.where()}: a local path "
            "must be an absolute `file://` URL",
            hint="envd-client packs local directories and files itself; pass it the path",
        )
    refuse_url_credentials(url, "PyPI requirement URL", dep.where())


def refuse_url_credentials(url: str, what: str, where: str | None = None) -> None:
    """Refuse a PyPI index or requirement URL with a password (or a token as user name):
    specs are hashed into ids and stored in state and descriptions. `git@` (ssh's user) is
    not a secret. The refusal shows the URL masked."""
    parts = split_url(url.removeprefix("git+"))
    if parts is None:
        raise InvalidSpecError(
            f"{what} `{url.partition('://')[0]}://…` is not a valid URL",
            hint="check the host part of the URL",
        )
    if parts.password or (parts.username and parts.username != "git"):
        raise InvalidSpecError(
            f"{what} `{mask_url(url)}`{f' at {where}' if where else ''} carries credentials; "
            "they would be written into ids, state, descriptions and logs",
            hint=_CREDENTIALS_HINT,
        )


def normalize_find_links(url: str, where: str | None = None) -> str:
    """A `--find-links` location: an http(s) URL of a flat page of archive links, without
    credentials. Its trailing `/` is kept: relative links on the page resolve against it. A
    local folder is refused: an agent on another machine can't read it."""
    value = url.strip()
    scheme = value.partition("://")[0].lower() if "://" in value else ""
    at = f" at {where}" if where else ""
    if scheme not in ("http", "https"):
        raise InvalidSpecError(
            f"failed to read `--find-links {value}`{at}: local find-links folders are not "
            "supported (agents on other machines can't read them); only http(s) URLs are",
            hint="name each archive as a requirement (`./dist/pkg-1.0.tar.gz`: envd-client "
            "packs it into the store), or serve the folder over http and give its URL",
        )
    refuse_url_credentials(value, "find-links URL", where)
    return value


def normalize_channel(channel: str) -> str:
    """Names stay names (resolved against the channel alias by agents); URLs lose a trailing
    `/`; local folders become absolute `file://` URLs so every agent reads the same place."""
    value = channel.strip()
    if "://" in value:
        _refuse_credentials(value)
        return value.rstrip("/")
    if value.startswith(("/", "./", "../", "~")) or value in {".", ".."}:
        return local_folder(Path(value), value).as_uri()
    return value.rstrip("/") or value


def local_folder(path: Path, shown: str) -> Path:
    """`path` (`~` expanded) made absolute with symlinks resolved; what the system refuses (an
    unknown user's `~`, a symlink loop, a name too long) is `InvalidSpecError`."""
    try:
        return path.expanduser().resolve()
    except (OSError, RuntimeError) as err:  # RuntimeError: unknown `~user`, 3.11's symlink loop
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise InvalidSpecError(
            f"failed to read channel folder `{shown}`: {reason.rstrip('.')}",
            hint="give an existing folder, or a channel name or URL",
        ) from err


def _refuse_credentials(url: str) -> None:
    """Specs are hashed, stored and shown: a secret in a channel URL would end up everywhere."""
    try:
        parts = urlsplit(url)
    except ValueError as err:  # e.g. an unbalanced `[` in the host
        raise InvalidSpecError(
            f"channel URL `{url.partition('://')[0]}://…` is not a valid URL: {err}",
            hint="check the host part of the URL",
        ) from err
    if parts.username or parts.password or CONDA_TOKEN.search(parts.path):
        shown = f"{parts.scheme}://{parts.hostname or ''}{'/…' if parts.path else ''}"
        raise InvalidSpecError(
            f"channel URL `{shown}` carries credentials; they would be written into ids, "
            "descriptions and logs",
            hint="give agents credentials in `~/.netrc` or `ENVD_CHANNEL_TOKEN=HOST[:PORT]=TOKEN`",
        )


def normalize_spec(raw: RawSpec) -> Spec:
    """Turn what the user wrote into the canonical Spec (DESIGN.md §4)."""
    if raw.locked:
        return _normalize_locked(raw)
    python = normalize_python(raw.python) if raw.python is not None else None
    conda: list[CondaDependency] = []
    for dep in raw.conda:
        normalized = normalize_conda(dep)
        folded = _python_constraint(normalized)
        if folded is not None:
            python = folded if python is None else _merge_versions(python, folded)
            continue
        conda.append(normalized)
    pypi = sorted(set(normalize_pypi(d) for d in raw.pypi), key=_pypi_sort_key)
    channels = _dedupe(normalize_channel(c) for c in raw.channels if c not in _IGNORED_CHANNELS)
    indexes = _dedupe(i.strip().rstrip("/") for i in raw.pypi_indexes)
    for index in indexes:
        refuse_url_credentials(index, "PyPI index URL")
    find_links = _dedupe(normalize_find_links(u) for u in raw.pypi_find_links)
    vpkgs = tuple(sorted((_vpkg_name(k), v.strip()) for k, v in raw.virtual_packages.items()))
    return Spec(
        conda=_merge_conda(conda),
        pypi=tuple(pypi),
        python=python,
        channels=tuple(channels),
        pypi_indexes=tuple(indexes),
        virtual_packages=vpkgs,
        exclude_newer=(
            normalize_exclude_newer(raw.exclude_newer) if raw.exclude_newer is not None else None
        ),
        pypi_find_links=tuple(find_links),
    )


def _normalize_locked(raw: RawSpec) -> Spec:
    """A lock's spec is its packages and nothing else: its channels are the ones their URLs
    lie in, so the req_id depends on the packages alone."""
    extra = raw.conda or raw.pypi or raw.python or raw.pypi_indexes or raw.virtual_packages
    extra = extra or raw.pypi_find_links
    if extra or raw.exclude_newer:
        raise InvalidSpecError(
            "a locked spec carries only the lock's packages, not dependencies or options",
            hint="import the lock alone (`--from-lock FILE`), without `-f`, `-p` or `--python`",
        )
    locked = check_locked(raw.locked, "the lock")
    return Spec(channels=locked_channels(locked), locked=locked)


def _python_constraint(dep: CondaDependency) -> str | None:
    """A plain `python <version>` conda dep folds into the python constraint; others stay."""
    if dep.name != "python" or dep.selector is not None or dep.category != DEFAULT_CATEGORY:
        return None
    match = MatchSpec(dep.spec)
    if match.build is not None or match.channel is not None or match.build_number is not None:
        return None
    return str(match.version) if match.version is not None else "*"


def _merge_versions(left: str, right: str) -> str:
    if left == "*" or left == right:
        return right
    if right == "*":
        return left
    if "|" in left or "|" in right:
        raise InvalidSpecError(
            f"cannot combine python constraints `{left}` and `{right}`",
            hint="give the python constraint once",
        )
    return str(VersionSpec(f"{left},{right}"))


def _merge_conda(deps: list[CondaDependency]) -> tuple[CondaDependency, ...]:
    """Sort by name; fold plain version specs of one name (same category and selector) into one
    sorted set of `,`-joined constraints, so `numpy>=1` + `numpy<2` == `numpy <2,>=1`."""
    constraints: dict[tuple[str, str, str | None], set[str]] = {}
    others: set[CondaDependency] = set()
    for dep in deps:
        match = MatchSpec(dep.spec)
        version = str(match.version) if match.version is not None else ""
        plain = match.build is None and match.channel is None and "[" not in dep.spec
        if not plain or "|" in version:
            others.add(dep)
            continue
        parts = constraints.setdefault((dep.name, dep.category, dep.selector), set())
        parts.update(p for p in version.split(",") if p and p != "*")
    merged = {
        CondaDependency(name, _plain_spec(name, parts), category, selector)
        for (name, category, selector), parts in constraints.items()
    }
    return tuple(sorted(merged | others, key=_conda_sort_key))


def _plain_spec(name: str, parts: set[str]) -> str:
    return str(MatchSpec(f"{name} {','.join(sorted(parts))}" if parts else name))


def _conda_sort_key(dep: CondaDependency) -> tuple[str, str, str, str]:
    return (dep.name, dep.category, dep.selector or "", dep.spec)


def _pypi_sort_key(dep: PypiDependency) -> tuple[str, str, str, str]:
    return (dep.name, dep.requirement, dep.category, dep.selector or "")


def _check_selector(dep: RawDependency) -> None:
    if dep.selector is not None and dep.selector not in SELECTOR_WORDS:
        raise InvalidSpecError(
            f"unknown platform selector `[{dep.selector}]` at {dep.where()}",
            hint="use one of: " + ", ".join(sorted(SELECTOR_WORDS)),
        )


def _vpkg_name(name: str) -> str:
    value = name.strip().lower()
    if not value.startswith("__") or len(value) < 3:
        raise InvalidSpecError(
            f"`{name}` is not a virtual package name",
            hint="virtual packages start with `__`, e.g. `--virtual-package __glibc=2.28`",
        )
    return value


def _dedupe(values: Any) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value and value not in seen:
            seen.append(value)
    return seen


def spec_from_canonical(data: dict[str, Any]) -> Spec:
    """Rebuild a Spec from its canonical dict (as stored in descriptions and jobs)."""
    if data.get("format") != CANONICAL_FORMAT:
        raise InvalidSpecError(f"unsupported canonical spec format `{data.get('format')}`")
    return Spec(
        conda=tuple(CondaDependency(**d) for d in data["conda"]),
        pypi=tuple(PypiDependency(**d) for d in data["pypi"]),
        python=data["python"],
        channels=tuple(data["channels"]),
        pypi_indexes=tuple(data["pypi_indexes"]),
        virtual_packages=tuple(sorted(data["virtual_packages"].items())),
        exclude_newer=data["exclude_newer"],
        locked=locked_from_canonical(data.get("locked", {})),
        pypi_find_links=tuple(data.get("pypi_find_links", ())),
    )
