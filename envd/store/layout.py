"""Where each kind of object lives in a store: the key layout of DESIGN.md §6.

    pkgs/<sha256>/<filename>                     every archive (.conda, .tar.bz2, wheel, sdist)
    links/<sha256 of .tar.bz2>.json              transmute link → .conda sha256 + filename
    built/<source sha256>/<python>/<platform>.json   built-wheel index → pkgs/ entry
    envs/<req_id>/<platform>/<full_id>.json      description, sealed with its digest; only gains formats
    defaults/<req_id>/<platform>.json            default pointer (full_id, digest), compare-and-swap
    aliases/<namespace>/<name>/<tag>.json        alias, compare-and-swap

Keys are exactly the paths above. Each JSON document names its format in a `schema` field, one
constant per prefix below; a reader refuses a format it does not know, and a new format gets a
new constant (and, if old readers must not see it, a new prefix). Archives are raw bytes,
addressed by their own sha256, so `pkgs/` needs no version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from envd.errors import InvalidKeyError
from envd.ids import is_id
from envd.platforms import NOARCH, check_platform
from envd.store.base import check_key

PKGS = "pkgs"
LINKS = "links"
BUILT = "built"
ENVS = "envs"
DEFAULTS = "defaults"
ALIASES = "aliases"

LINK_FORMAT = "envd-link-v1"
BUILT_FORMAT = "envd-built-v1"
DESCRIPTION_FORMAT = "envd-description-v1"
DEFAULT_FORMAT = "envd-default-v1"
ALIAS_FORMAT = "envd-alias-v1"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ALIAS_PART = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_PYTHON_TAG = re.compile(r"^[a-z]+[0-9]*$")
_JSON = ".json"


@dataclass(frozen=True, slots=True)
class DescriptionKey:
    """The parts of an `envs/<req_id>/<platform>/<full_id>.json` key."""

    req_id: str
    platform: str
    full_id: str


def package_key(sha256: str, filename: str) -> str:
    _check_sha256(sha256)
    if "/" in filename:
        raise InvalidKeyError(f"failed to build a package key: filename `{filename}` holds `/`")
    return check_key(f"{PKGS}/{sha256}/{filename}")


def link_key(sha256: str) -> str:
    return f"{LINKS}/{_check_sha256(sha256)}{_JSON}"


def built_key(source_sha256: str, python: str, platform: str) -> str:
    if not _PYTHON_TAG.match(python):
        raise InvalidKeyError(f"failed to build a built key: python tag `{python}` is invalid")
    target = platform if platform == NOARCH else check_platform(platform)
    return f"{BUILT}/{_check_sha256(source_sha256)}/{python}/{target}{_JSON}"


def description_key(req_id: str, platform: str, full_id: str) -> str:
    prefix = environments_prefix(req_id)
    return f"{prefix}{check_platform(platform)}/{_check_id('full_id', full_id)}{_JSON}"


def default_key(req_id: str, platform: str) -> str:
    return f"{DEFAULTS}/{_check_id('req_id', req_id)}/{check_platform(platform)}{_JSON}"


def alias_key(namespace: str, name: str, tag: str) -> str:
    """`aliases/<namespace>/<name>/<tag>.json`; a name may hold `/` (one folder per segment)."""
    for field, value in (
        ("namespace", namespace),
        ("tag", tag),
        *(("name", n) for n in name.split("/")),
    ):
        if not _ALIAS_PART.match(value) or value.endswith(_JSON):
            raise InvalidKeyError(
                f"failed to build an alias key: {field} `{value}` is invalid",
                hint="alias parts are 1-128 lowercase letters, digits, `.`, `_` or `-`, "
                "starting with a letter or digit (names may hold `/`)",
            )
    return check_key(f"{ALIASES}/{namespace}/{name}/{tag}{_JSON}")


def aliases_prefix(namespace: str | None = None) -> str:
    """`aliases/`, or `aliases/<namespace>/`: the prefix to `list` alias records by."""
    if namespace is None:
        return f"{ALIASES}/"
    return f"{ALIASES}/{namespace}/"


def parse_alias_key(key: str) -> tuple[str, str, str] | None:
    """(namespace, name, tag) of an alias key, or None if `key` is not one."""
    parts = key.split("/")
    if len(parts) < 4 or parts[0] != ALIASES or not parts[-1].endswith(_JSON):
        return None
    namespace, name, tag = parts[1], "/".join(parts[2:-1]), parts[-1].removesuffix(_JSON)
    try:
        alias_key(namespace, name, tag)
    except InvalidKeyError:
        return None
    return namespace, name, tag


def environments_prefix(req_id: str | None = None) -> str:
    """`envs/`, or `envs/<req_id>/` for one request: the prefix to `list` descriptions by."""
    if req_id is None:
        return f"{ENVS}/"
    return f"{ENVS}/{_check_id('req_id', req_id)}/"


def parse_description_key(key: str) -> DescriptionKey | None:
    """The ids in a description key, or None if `key` is not one (foreign files are skipped)."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != ENVS or not parts[3].endswith(_JSON):
        return None
    req, platform, full = parts[1], parts[2], parts[3].removesuffix(_JSON)
    if not (is_id(req) and is_id(full)):
        return None
    return DescriptionKey(req_id=req, platform=platform, full_id=full)


def _check_id(what: str, value: str) -> str:
    if not is_id(value):
        raise InvalidKeyError(
            f"failed to build a store key: {what} `{value}` is not 40 lowercase hex characters"
        )
    return value


def _check_sha256(value: str) -> str:
    if not _SHA256.match(value):
        raise InvalidKeyError(
            f"failed to build a store key: sha256 `{value}` is not 64 lowercase hex characters"
        )
    return value
