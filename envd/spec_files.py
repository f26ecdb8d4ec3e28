"""environment.yml: conda's environment file, with conda-lock's extensions, read into a RawSpec."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from envd.errors import InvalidSpecError, UnknownPlatformError
from envd.platforms import SELECTOR_WORDS, known_platforms
from envd.requirements_txt import PipLineReader, read_spec_file
from envd.spec import DEFAULT_CATEGORY, RawDependency, RawSpec, local_folder

_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"
# conda-lock's selector pattern (from conda-build): a `[word]` group ending the comment.
_TRAILING_SELECTOR = re.compile(r"\[([^\[\]]+)\][^()]*$")
_LEADING_SELECTOR = re.compile(r"\[([^\[\]]*)\]")
_COMMENT = re.compile(r"(?:^|\s)#(.*)$")
_JINJA = re.compile(r"\{\{|\{%")
# A pip-style extra after a conda package name (`nbconvert[execute]>=6`): bracket contents
# without `=`, which conda's own bracket syntax (`numpy[version='>=1.20']`) always has.
_EXTRAS = re.compile(r"^(\s*(?:[^\s:\[\]]+::)?[A-Za-z0-9_.\-]+)\s*\[([^\]=]*)\]\s*(.*)$")
# Keys read for the spec; `name`, `prefix` and `variables` say where and how the environment
# is installed or activated, not what it contains, so they are accepted and ignored.
_IGNORED_KEYS = frozenset({"name", "prefix", "variables"})
_SPEC_KEYS = frozenset(
    {"channels", "dependencies", "platforms", "category", "pip-repositories", "allow-pypi-requests"}
)
_KEYS = _SPEC_KEYS | _IGNORED_KEYS


@dataclass(frozen=True, slots=True)
class EnvironmentFile:
    """One environment file: its raw spec, plus warnings (editable pip entries skipped)."""

    spec: RawSpec
    warnings: tuple[str, ...] = ()


def read_environment_file(path: Path) -> EnvironmentFile:
    """Parse an environment.yml; `-r` lines of its `pip:` list are relative to it."""
    return parse_environment_text(read_spec_file(path), source=str(path), base_dir=path.parent)


def parse_environment_text(text: str, *, source: str, base_dir: Path) -> EnvironmentFile:
    return _Parser(text, source, base_dir).parse()


class _Parser:
    def __init__(self, text: str, source: str, base_dir: Path) -> None:
        self._lines = text.splitlines()
        self._text = text
        self._source = source
        self._base_dir = base_dir
        self._selector_lines: set[int] = set()
        self._warnings: list[str] = []

    def _channel(self, channel: str) -> str:
        """A relative folder channel is relative to the file, not to where envd runs."""
        if channel.startswith(("./", "../")) or channel in {".", ".."}:
            return str(local_folder(self._base_dir / channel, channel))
        return channel

    def parse(self) -> EnvironmentFile:
        self._reject_jinja()
        root = self._compose()
        sections = self._sections(root)
        category = self._category(sections.get("category"))
        pip = PipLineReader(category=category, editable="skip")
        raw = RawSpec()
        if "channels" in sections:
            raw.channels = [
                self._channel(s) for s, _ in self._strings(sections["channels"], "channels")
            ]
        if "platforms" in sections:
            raw.platforms = self._platforms(sections["platforms"])
        if "pip-repositories" in sections:
            for url, _ in self._strings(sections["pip-repositories"], "pip-repositories"):
                pip.add_extra_index(url)
        if "allow-pypi-requests" in sections:
            self._allow_pypi(sections["allow-pypi-requests"])
        if "dependencies" in sections:
            raw.conda = self._dependencies(sections["dependencies"], category, pip)
        self._reject_stray_selectors()
        result = pip.result()
        raw.pypi = list(result.dependencies)
        raw.pypi_indexes = list(result.indexes)
        raw.pypi_find_links = list(result.find_links)
        warnings = [
            f"skipped editable pip entry `{dep.text}` at {dep.where()}: install it after "
            "the environment is created"
            for dep in result.skipped
        ]
        return EnvironmentFile(raw, (*self._warnings, *warnings))

    # -- document shape -------------------------------------------------------------------

    def _compose(self) -> yaml.MappingNode:
        try:
            root = yaml.compose(self._text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = err.problem or err.context or "invalid YAML"
            raise InvalidSpecError(
                f"failed to parse `{self._source}{line}`: {problem}",
                hint="check the YAML syntax around that line",
            ) from err
        except yaml.YAMLError as err:
            raise InvalidSpecError(f"failed to parse `{self._source}`: {err}") from err
        if root is None:
            raise InvalidSpecError(
                f"failed to parse `{self._source}`: the file is empty",
                hint="an environment file needs at least a `dependencies:` list",
            )
        if not isinstance(root, yaml.MappingNode):
            raise self._error(root, "expected a mapping with `channels:` and `dependencies:`")
        return root

    def _sections(self, root: yaml.MappingNode) -> dict[str, yaml.Node]:
        sections: dict[str, yaml.Node] = {}
        for key, value in root.value:
            name = self._scalar(key, "a top-level key")
            if name not in _KEYS:
                # conda-lock ignores keys it does not know; a typo still deserves a word
                closest = difflib.get_close_matches(name, sorted(_KEYS), n=1)
                meant = f" (did you mean `{closest[0]}`?)" if closest else ""
                self._warnings.append(
                    f"ignored unknown key `{name}` at {self._where(key)}{meant}; known keys: "
                    + ", ".join(f"`{k}`" for k in sorted(_KEYS))
                )
                continue
            if name in sections:
                raise self._error(key, f"key `{name}` is given twice")
            if name not in _IGNORED_KEYS:
                sections[name] = value
        return sections

    def _category(self, node: yaml.Node | None) -> str:
        if node is None or node.tag == _NULL_TAG:
            return DEFAULT_CATEGORY
        return self._scalar(node, "`category`").strip() or DEFAULT_CATEGORY

    def _platforms(self, node: yaml.Node) -> list[str]:
        platforms: list[str] = []
        for name, item in self._strings(node, "platforms"):
            if name not in known_platforms():
                raise UnknownPlatformError(
                    f"unknown platform `{name}` at {self._where(item)}",
                    hint="valid platforms: " + ", ".join(known_platforms()),
                )
            platforms.append(name)
        return platforms

    def _allow_pypi(self, node: yaml.Node) -> None:
        if isinstance(node, yaml.ScalarNode) and node.value.lower() in {"true", "yes", "on"}:
            return
        raise self._error(
            node,
            "`allow-pypi-requests: false` is not supported yet",
            hint="remove the key; PyPI is used unless `--index-url` replaces it",
        )

    # -- dependencies ---------------------------------------------------------------------

    def _dependencies(
        self, node: yaml.Node, category: str, pip: PipLineReader
    ) -> list[RawDependency]:
        conda: list[RawDependency] = []
        for item in self._items(node, "dependencies"):
            if isinstance(item, yaml.MappingNode):
                conda.extend(self._pip_section(item, pip))
                continue
            text = self._scalar(item, "a dependency")
            if not text.strip():
                raise self._error(item, "empty dependency")
            line = item.start_mark.line + 1
            text = self._without_extras(text, item)
            conda.append(RawDependency(text, self._source, line, category, self._selector(item)))
        return conda

    def _without_extras(self, text: str, node: yaml.Node) -> str:
        """`nbconvert[execute]!=6.0.0` → `nbconvert!=6.0.0`, as conda-lock reads it, warning
        that extras are a PyPI idea: conda installs the package without them."""
        found = _EXTRAS.match(text)
        if found is None:
            return text
        name, extras, rest = found.groups()
        kept = name.strip() + (" " if rest[:1].isalnum() else "") + rest
        self._warnings.append(
            f"conda dependency `{text}` at {self._where(node)}: extras `[{extras}]` are not "
            f"part of conda's match spec; reading it as `{kept}`"
        )
        return kept

    def _pip_section(self, node: yaml.MappingNode, pip: PipLineReader) -> list[RawDependency]:
        """`- pip: [...]`: PyPI deps, plus the conda `pip` dep conda-lock adds for them."""
        added: list[RawDependency] = []
        for key, value in node.value:
            if self._scalar(key, "a dependency section") != "pip":
                raise self._error(
                    key, f"unknown dependency section `{key.value}`", hint="only `pip:` is known"
                )
            if value.tag == _NULL_TAG:
                continue  # conda-lock treats `pip:` with no list as absent
            section = self._selector(key)
            guards = [self._pip_entry(item, section, pip) for item in self._items(value, "pip")]
            # conda-lock adds `pip` on the platforms where the list keeps an entry (or where an
            # empty list is written), and always to `main`: pip must be there to install them.
            line = key.start_mark.line + 1
            selectors: Sequence[str | None] = [section]
            if guards and None not in guards:
                selectors = sorted({g for g in guards if g is not None})
            added.extend(
                RawDependency("pip", self._source, line, DEFAULT_CATEGORY, s) for s in selectors
            )
        return added

    def _pip_entry(self, item: yaml.Node, section: str | None, pip: PipLineReader) -> str | None:
        """Add one `pip:` entry; return the selector guarding it."""
        text = self._scalar(item, "a pip entry")
        own = self._selector(item)
        if own is not None and section is not None and own != section:
            raise self._error(
                item,
                f"selector `[{own}]` inside a `pip:` section guarded by `[{section}]`",
                hint="guard either the section or its entries",
            )
        selector = own or section
        pip.add_line(
            text,
            source=self._source,
            line=item.start_mark.line + 1,
            base_dir=self._base_dir,
            selector=selector,
        )
        return selector

    def _selector(self, node: yaml.Node) -> str | None:
        """The platform selector in the comment after a node (`numpy  # [linux]`), if any."""
        line = node.end_mark.line
        rest = self._lines[line][node.end_mark.column :] if line < len(self._lines) else ""
        rest = rest.lstrip().removeprefix(":").lstrip()
        if not rest.startswith("#"):
            return None
        selector = self._comment_selector(rest[1:], line)
        if selector is not None:
            self._selector_lines.add(line)
        return selector

    def _comment_selector(self, comment: str, line: int) -> str | None:
        """`[linux]` (leading) or `… [linux]` (trailing, as conda-lock reads it) → `linux`.

        A leading `[…]` that is not a platform word is an error; a trailing one is prose
        (`# needed for sphinx-gallery[parallel]`), which conda-lock would read as a selector.
        """
        comment = comment.strip()
        leading = _LEADING_SELECTOR.match(comment)
        if leading:
            word = leading.group(1).strip()
            if word not in SELECTOR_WORDS:
                raise InvalidSpecError(
                    f"failed to parse `{self._source}:{line + 1}`: unsupported selector `[{word}]`",
                    hint="envd understands platform selectors only: "
                    + ", ".join(sorted(SELECTOR_WORDS)),
                )
            return word
        trailing = _TRAILING_SELECTOR.search(comment)
        if trailing and trailing.group(1).strip() in SELECTOR_WORDS:
            return trailing.group(1).strip()
        return None

    def _reject_stray_selectors(self) -> None:
        for index, line in enumerate(self._lines):
            if index in self._selector_lines or line.lstrip().startswith("#"):
                continue
            comment = _COMMENT.search(line)
            if comment and self._comment_selector(comment.group(1), index) is not None:
                raise InvalidSpecError(
                    f"failed to parse `{self._source}:{index + 1}`: selectors are only "
                    "supported on dependencies",
                    hint="remove the selector: channels, platforms and the other keys apply "
                    "to every platform",
                )

    def _reject_jinja(self) -> None:
        for index, line in enumerate(self._lines):
            if not line.lstrip().startswith("#") and _JINJA.search(line):
                raise InvalidSpecError(
                    f"failed to parse `{self._source}:{index + 1}`: Jinja templates are not "
                    "supported",
                    hint="render the template first and pass the result",
                )

    # -- node helpers ---------------------------------------------------------------------

    def _items(self, node: yaml.Node, key: str) -> list[yaml.Node]:
        if node.tag == _NULL_TAG:
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self._error(node, f"`{key}` must be a list")
        items: list[yaml.Node] = node.value
        return items

    def _strings(self, node: yaml.Node, key: str) -> list[tuple[str, yaml.Node]]:
        return [
            (self._scalar(item, f"an entry of `{key}`"), item) for item in self._items(node, key)
        ]

    def _scalar(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _STR_TAG:
            raise self._error(node, f"expected a string for {what}, found {_describe(node)}")
        value: str = node.value
        return value

    def _where(self, node: yaml.Node) -> str:
        return f"{self._source}:{node.start_mark.line + 1}"

    def _error(self, node: yaml.Node, problem: str, hint: str | None = None) -> InvalidSpecError:
        return InvalidSpecError(f"failed to parse `{self._where(node)}`: {problem}", hint=hint)


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if node.tag == _NULL_TAG:
        return "nothing"
    return f"`{node.value}`"
