"""requirements.txt: pip's requirement-file syntax read into raw PyPI dependencies and indexes."""

from __future__ import annotations

import os
import re
import shlex
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidSdistFilename, parse_sdist_filename, parse_wheel_filename

from envd.errors import InvalidSpecError, RequestTooLargeError
from envd.spec import DEFAULT_CATEGORY, RawDependency, is_local_url, normalize_find_links

DEFAULT_INDEX_URL = "https://pypi.org/simple"
MAX_SPEC_FILE_BYTES = 1024 * 1024

# pip's own rule: `#` starts a comment at the beginning of a line or after whitespace.
_COMMENT = re.compile(r"(^|\s+)#.*$")
_VCS_PREFIXES = ("git+", "hg+", "svn+", "bzr+")
_EGG_FRAGMENT = re.compile(r"(?:^|&)egg=([^&]+)")
_SUPPORTED = "`-r`, `-i/--index-url`, `--extra-index-url`, `-f/--find-links` and `--hash`"

EditablePolicy = Literal["error", "skip"]


@dataclass(frozen=True, slots=True)
class PipRequirements:
    """What requirement lines add up to: dependencies, index URLs, find-links pages, and
    skipped editables.

    `indexes` is empty when no index option was given (PyPI); otherwise the primary index
    (`-i`, or PyPI when only `--extra-index-url` was given) comes first, then the extra ones.
    `find_links` are the `-f/--find-links` URLs, in the order given.
    """

    dependencies: tuple[RawDependency, ...] = ()
    indexes: tuple[str, ...] = ()
    skipped: tuple[RawDependency, ...] = ()
    find_links: tuple[str, ...] = ()


def read_spec_file(path: Path) -> str:
    """Read a spec file as UTF-8 text (a pipe such as `<(cmd)` too), refusing missing,
    unreadable and oversized files, folders and names the system refuses (too long, a symlink
    loop) with `InvalidSpecError` naming the file: never an OSError."""
    try:
        with path.open("rb") as source:
            info = os.fstat(source.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > MAX_SPEC_FILE_BYTES:
                raise _too_large(path, f"{info.st_size} bytes")
            data = source.read(MAX_SPEC_FILE_BYTES + 1)  # a pipe has no size to check first
    except FileNotFoundError as err:
        raise InvalidSpecError(
            f"failed to read `{path}`: no such file", hint="check the path given"
        ) from err
    except OSError as err:
        raise InvalidSpecError(f"failed to read `{path}`: {err.strerror or err}") from err
    if len(data) > MAX_SPEC_FILE_BYTES:
        raise _too_large(path, f"more than {MAX_SPEC_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InvalidSpecError(f"failed to read `{path}`: not UTF-8 text: {err}") from err


def _too_large(path: Path, size: str) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"failed to read `{path}`: {size} is over the limit of {MAX_SPEC_FILE_BYTES} bytes",
        hint="split the spec into smaller files",
    )


def read_requirements_file(path: Path, *, category: str = DEFAULT_CATEGORY) -> PipRequirements:
    """Parse a requirements.txt (following `-r` includes) into PyPI dependencies and indexes."""
    reader = PipLineReader(category=category, editable="error")
    reader.read_file(path, selector=None)
    return reader.result()


def requirement_text(text: str, where: str, base_dir: Path | None = None) -> str:
    """One requirement as PEP 508 text: a bare VCS or archive URL gets its package name, and a
    local directory or file (`./pkg`, `/abs/x.tar.gz`, `file:///…`, `name @ ./pkg`) becomes
    `name @ file:///absolute/path` (relative paths are relative to `base_dir`, the folder of
    the file that names them; the working directory by default). envd-client packs those into
    the store before the spec leaves it (`client/local_sources.py`).

    pip accepts `git+https://host/org/repo@tag` without a name; the name comes from an
    `#egg=` fragment, the repository (as conda-lock does) or the wheel/sdist file name.
    """
    value = text.strip()
    try:
        parsed = Requirement(value)
    except InvalidRequirement:
        parsed = None
    if parsed is not None:
        if parsed.url and is_local_url(parsed.url):
            return _local_requirement(parsed, _local_path(parsed.url, where, base_dir), where)
        return value
    if value.startswith((".", "/", "~")) or value.startswith("file:"):
        path = _local_path(value, where, base_dir)
        return f"{_local_name(path, value, where)} @ {path.as_uri()}"
    if "://" not in value:
        return value  # not a URL: normalization reports the parse error with its location
    name = _name_from_url(value)
    if name is None:
        raise InvalidSpecError(
            f"failed to parse PyPI requirement `{value}` at {where}: cannot tell which "
            "package the URL is",
            hint=f"name it: `NAME @ {value}`",
        )
    return f"{name} @ {value}"


def _local_requirement(parsed: Requirement, path: Path, where: str) -> str:
    extras = f"[{','.join(sorted(parsed.extras))}]" if parsed.extras else ""
    marker = f" ; {parsed.marker}" if parsed.marker is not None else ""
    return f"{parsed.name}{extras} @ {path.as_uri()}{marker}"


def _local_path(location: str, where: str, base_dir: Path | None) -> Path:
    """The existing directory or file a local requirement names, absolute."""
    shown = location
    if location.lower().startswith("file:"):
        parts = urlsplit(location)
        if parts.netloc not in ("", "localhost"):
            raise InvalidSpecError(
                f"failed to read local requirement `{shown}` at {where}: `file://` URLs name "
                "files of this machine only",
                hint="write `file:///absolute/path`",
            )
        location = unquote(parts.path)
    try:
        path = (base_dir or Path.cwd()) / Path(location).expanduser()
        path = path.resolve()
        found = path.is_dir() or path.is_file()
    except (OSError, RuntimeError) as err:  # RuntimeError: unknown `~user`, a symlink loop
        raise InvalidSpecError(
            f"failed to read local requirement `{shown}` at {where}: {err}"
        ) from err
    if not found:
        raise InvalidSpecError(
            f"failed to read local requirement `{shown}` at {where}: no such directory or "
            f"file `{path}`",
            hint="relative paths are relative to the file that names them (the working "
            "directory for `--pypi`)",
        )
    return path


def _local_name(path: Path, shown: str, where: str) -> str:
    """The project name of a local directory (`[project] name` of its pyproject.toml) or file
    (its wheel or sdist file name)."""
    name: str | None = None
    if path.is_dir():
        try:
            with (path / "pyproject.toml").open("rb") as source:
                project = tomllib.load(source).get("project", {})
            name = project.get("name") if isinstance(project, dict) else None
        except (OSError, tomllib.TOMLDecodeError):
            name = None
    else:
        name = _name_from_url(path.as_uri())
    if not isinstance(name, str) or not name.strip():
        raise InvalidSpecError(
            f"failed to parse PyPI requirement `{shown}` at {where}: cannot tell which "
            "package it is",
            hint=f"name it: `NAME @ {shown}`",
        )
    return name.strip()


class PipLineReader:
    """Collects requirement lines from files and environment.yml `pip:` entries."""

    def __init__(self, *, category: str, editable: EditablePolicy) -> None:
        self._category = category
        self._editable = editable
        self._dependencies: list[RawDependency] = []
        self._skipped: list[RawDependency] = []
        self._index_url: tuple[str, str] | None = None
        self._extra_index_urls: list[str] = []
        self._find_links: list[str] = []
        self._visited: set[Path] = set()

    def result(self) -> PipRequirements:
        indexes: list[str] = []
        if self._index_url is not None or self._extra_index_urls:
            primary = self._index_url[0] if self._index_url else DEFAULT_INDEX_URL
            indexes = [primary, *(u for u in self._extra_index_urls if u != primary)]
        return PipRequirements(
            tuple(self._dependencies),
            tuple(dict.fromkeys(indexes)),
            tuple(self._skipped),
            tuple(dict.fromkeys(self._find_links)),
        )

    def add_extra_index(self, url: str) -> None:
        self._extra_index_urls.append(url.strip())

    def read_file(self, path: Path, *, selector: str | None) -> None:
        key = file_key(path)
        if key in self._visited:
            return  # included twice (or in a cycle): its lines are already in
        self._visited.add(key)
        text = read_spec_file(path)
        for number, line in _logical_lines(text):
            self.add_line(
                line, source=str(path), line=number, base_dir=path.parent, selector=selector
            )

    def add_line(
        self, text: str, *, source: str, line: int, base_dir: Path, selector: str | None
    ) -> None:
        """One logical line: a requirement (with per-requirement options) or options."""
        content = _COMMENT.sub("", text).strip()
        if not content:
            return
        at = _Origin(source, line, base_dir, selector)
        requirement, options = _split_requirement(content)
        if requirement:
            for name, value in _parse_options(options, at.where):
                if name != "--hash":
                    raise _refusal(name, value, at.where)
            text = requirement_text(requirement, at.where, at.base_dir)
            self._dependencies.append(RawDependency(text, source, line, self._category, selector))
            return
        for name, value in _parse_options(options, at.where):
            self._option(name, value, at)

    def _option(self, name: str, value: str, at: _Origin) -> None:
        if name == "--requirement":
            self._include(value, at)
        elif name == "--index-url":
            self._set_index_url(value.strip(), at.where)
        elif name == "--extra-index-url":
            self.add_extra_index(value)
        elif name == "--find-links":
            self._find_links.append(normalize_find_links(value, at.where))
        elif name == "--editable" and self._editable == "skip":
            dep = RawDependency(f"-e {value}", at.source, at.line, self._category, at.selector)
            self._skipped.append(dep)
        else:
            raise _refusal(name, value, at.where)

    def _include(self, value: str, at: _Origin) -> None:
        if "://" in value:
            raise InvalidSpecError(
                f"failed to include `{value}` at {at.where}: remote requirement files are not "
                "supported",
                hint="download the file and pass it with `-r`",
            )
        included = at.base_dir / value
        try:
            found = included.is_file()
        except OSError as err:  # a name too long, a symlink loop: said in words, not a traceback
            raise InvalidSpecError(
                f"failed to include `{value}` at {at.where}: {err.strerror or err}",
                hint="`-r` paths are relative to the file that names them",
            ) from err
        if not found:
            raise InvalidSpecError(
                f"failed to include `{value}` at {at.where}: no such file `{included}`",
                hint="`-r` paths are relative to the file that names them",
            )
        self.read_file(included, selector=at.selector)

    def _set_index_url(self, url: str, where: str) -> None:
        if self._index_url is not None and self._index_url[0] != url:
            raise InvalidSpecError(
                f"failed to set index URL `{url}` at {where}: `{self._index_url[0]}` was "
                f"already set at {self._index_url[1]}",
                hint="give `--index-url` once; add others with `--extra-index-url`",
            )
        self._index_url = (url, where)


def file_key(path: Path) -> Path:
    """The file `path` names, for spotting a file included twice; a path that cannot be
    resolved (a symlink loop) is its own key, and reading it says what is wrong."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: Python 3.11's symlink loop
        return Path(os.path.abspath(path))


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where a requirement line came from, and what applies to everything it adds."""

    source: str
    line: int
    base_dir: Path
    selector: str | None

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


# Options envd refuses with a reason of their own: (what fails, why, hint).
_REFUSED = {
    "--editable": (
        "requirement `-e {value}`",
        "editable installs are not supported",
        "drop `-e`: envd-client packs the directory and installs it as a regular (non-editable) "
        "package; an editable install can't be shared through a store",
    ),
    "--constraint": (
        "`-c {value}`",
        "constraint files are not supported yet",
        "write the constraints as requirements, e.g. `numpy<2`",
    ),
}


def _refusal(name: str, value: str, where: str) -> InvalidSpecError:
    if name in _REFUSED:
        what, why, hint = _REFUSED[name]
        return InvalidSpecError(
            f"failed to parse {what.format(value=value)} at {where}: {why}", hint=hint
        )
    return InvalidSpecError(
        f"failed to parse option `{name}` at {where}: not supported",
        hint=f"envd reads {_SUPPORTED} in requirement files",
    )


_LONG_NAMES = {
    "-r": "--requirement",
    "-c": "--constraint",
    "-i": "--index-url",
    "-e": "--editable",
    "-f": "--find-links",
}
_WITH_VALUE = frozenset(
    {
        *_LONG_NAMES.values(),
        "--extra-index-url",
        "--hash",
        "--trusted-host",
        "--config-settings",
        "--global-option",
    }
)


def _parse_options(options: list[str], where: str) -> list[tuple[str, str]]:
    """`-r x`, `-rx`, `--requirement x`, `--requirement=x` → (`--requirement`, `x`)."""
    parsed: list[tuple[str, str]] = []
    tokens = list(options)
    while tokens:
        token = tokens.pop(0)
        if token.startswith("--"):
            name, equals, value = token.partition("=")
        elif token.startswith("-") and len(token) >= 2:
            name, value = _LONG_NAMES.get(token[:2], token[:2]), token[2:]
            equals = "=" if value else ""
        else:
            raise InvalidSpecError(
                f"failed to parse `{token}` at {where}: expected an option",
                hint="put one requirement per line",
            )
        if name in _WITH_VALUE and not equals:
            if not tokens:
                raise InvalidSpecError(f"failed to parse `{name}` at {where}: missing value")
            value = tokens.pop(0)
        parsed.append((name, value))
    return parsed


def _split_requirement(content: str) -> tuple[str, list[str]]:
    """pip's split: words up to the first one starting with `-` are the requirement."""
    words = content.split(" ")
    for index, word in enumerate(words):
        if word.startswith("-"):
            requirement = " ".join(words[:index]).strip()
            return requirement, _shell_words(" ".join(words[index:]))
    return content, []


def _shell_words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as err:
        raise InvalidSpecError(f"failed to parse options `{text}`: {err}") from err


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join `\\` continuations the way pip does; each line keeps its first line number."""
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        comment = bool(_COMMENT.match(line))
        if line.endswith("\\") and not comment:
            if not pending:
                start = number
            pending.append(line[:-1])
            continue
        if pending:
            pending.append(" " + line if comment else line)
            lines.append((start, "".join(pending)))
            pending = []
        else:
            lines.append((number, line))
    if pending:
        lines.append((start, "".join(pending)))
    return lines


def _name_from_url(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced `[` in the host ("Invalid IPv6 URL")
        return None
    egg = _EGG_FRAGMENT.search(parts.fragment)
    if egg:
        return egg.group(1).split("[", 1)[0]
    last = unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])
    if url.startswith(_VCS_PREFIXES):
        name = last.split("@", 1)[0].removesuffix(".git")
        return name or None
    if last.endswith(".whl"):
        try:
            return str(parse_wheel_filename(last)[0])
        except ValueError:
            return None
    try:
        return str(parse_sdist_filename(last)[0])
    except InvalidSdistFilename:
        return None
