"""Aliases: the names `namespace/name[:tag]`, what an alias points at, and its stored record.

An alias points at one req_id and, per platform, one full_id together with the digest of the
description it was set to (as a default pointer carries it): a read through an alias serves
exactly that version or fails. Tags that look like versions (`v1`, `1.2`, `2024-06-01`: a
digit, or `v` and a digit, first) are write-once; other words (`latest`, `stable`) move. The
record keeps every move (who, when, from, to), the newest last; `AliasBook` (envd/alias_book.py)
moves it by compare-and-swap.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from envd.default_pointer import DIGEST_PATTERN
from envd.errors import CorruptObjectError, EnvdError, InvalidAliasError, InvalidKeyError
from envd.ids import is_id
from envd.platforms import check_platform
from envd.store.layout import ALIAS_FORMAT, alias_key

DEFAULT_TAG = "latest"
MAX_NAME_CHARS = 256
# the oldest moves are dropped past this many, so a record stays one small read
MAX_HISTORY = 1000
_VERSION_TAG = re.compile(r"^v?[0-9]")
_FORMS = (
    "write aliases as `namespace/name[:tag]` (e.g. `ml_team/train_env:v1`): lowercase letters, "
    "digits, `-`, `_` and `.`, `/` between name segments; the tag defaults to `latest`"
)


class Action:
    """What a move did (`history[].action`)."""

    SET = "set"
    DELETE = "delete"
    ENVIRONMENT_DELETED = "environment-deleted"


@dataclass(frozen=True, slots=True)
class AliasName:
    namespace: str
    name: str  # the path after the namespace; may hold `/`
    tag: str = DEFAULT_TAG

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.tag}"

    @property
    def write_once(self) -> bool:
        """Version-like tags are set once; words move."""
        return bool(_VERSION_TAG.match(self.tag))

    @property
    def key(self) -> str:
        return alias_key(self.namespace, self.name, self.tag)


def looks_like_alias(text: str) -> bool:
    """Ids are hex (`req_id:full_id`); every alias has a `/`."""
    return "/" in text


def parse_alias(text: str) -> AliasName:
    """`ml_team/train_env:v1` → AliasName; refuses anything else, saying the valid form."""
    path, colon, tag = text.strip().partition(":")
    namespace, slash, name = path.partition("/")
    if not slash or not name or (colon and not tag) or len(text) > MAX_NAME_CHARS:
        raise InvalidAliasError(f"`{text}` is not an alias", hint=_FORMS)
    alias = AliasName(namespace, name, tag or DEFAULT_TAG)
    try:
        alias.key  # noqa: B018 - every part checked the way the store key needs it
    except InvalidKeyError as err:
        raise InvalidAliasError(f"`{text}` is not an alias: {err.message}", hint=_FORMS) from err
    return alias


@dataclass(frozen=True, slots=True)
class AliasTarget:
    """What an alias points at, as people name it: a req_id and its full_id per platform."""

    req_id: str
    full_ids: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"req_id": self.req_id, "full_ids": dict(sorted(self.full_ids.items()))}

    def describe(self) -> str:
        envs = ", ".join(f"`{f}` on `{p}`" for p, f in sorted(self.full_ids.items()))
        return f"req_id `{self.req_id}` ({envs or 'no environment'})"


@dataclass(frozen=True, slots=True)
class AliasMove:
    """One entry of an alias's history: who moved it, when, from what to what."""

    when: str
    who: str
    action: str
    before: AliasTarget | None
    after: AliasTarget | None

    def to_json(self) -> dict[str, Any]:
        return {
            "when": self.when,
            "who": self.who,
            "action": self.action,
            "from": None if self.before is None else self.before.to_json(),
            "to": None if self.after is None else self.after.to_json(),
        }


@dataclass(frozen=True, slots=True)
class Alias:
    """A stored alias record. `req_id` None: deleted (the record stays for its history)."""

    name: AliasName
    req_id: str | None
    # platform → (full_id, digest of the description it was set to)
    environments: dict[str, tuple[str, str]]
    history: tuple[AliasMove, ...] = ()

    @property
    def live(self) -> bool:
        return self.req_id is not None

    @property
    def target(self) -> AliasTarget | None:
        if self.req_id is None:
            return None
        return AliasTarget(self.req_id, {p: e[0] for p, e in self.environments.items()})

    def to_json(self) -> dict[str, Any]:
        """What `alias get --json` prints: `alias`, `req_id`, `full_ids`, `history`."""
        target = self.target
        return {
            "alias": str(self.name),
            "req_id": self.req_id,
            "full_ids": {} if target is None else target.to_json()["full_ids"],
            "history": [m.to_json() for m in self.history],
        }


def encode_alias(alias: Alias) -> bytes:
    doc = {
        "schema": ALIAS_FORMAT,
        "alias": str(alias.name),
        "req_id": alias.req_id,
        "environments": {
            p: {"full_id": f, "digest": d} for p, (f, d) in sorted(alias.environments.items())
        },
        "history": [m.to_json() for m in alias.history[-MAX_HISTORY:]],
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def decode_alias(data: bytes, name: AliasName, store_url: str) -> Alias:
    """The record stored for `name`, checked field by field; CorruptObjectError if it is not
    one (garbage, another alias's record copied here, an id that is not one)."""
    try:
        doc = json.loads(data)
        valid = doc["schema"] == ALIAS_FORMAT and doc["alias"] == str(name)
        req_id = doc["req_id"]
        environments = {
            check_platform(p): (_full_id(e["full_id"]), _digest(e["digest"]))
            for p, e in doc["environments"].items()
        }
        history = tuple(_move(m) for m in doc["history"])
        valid = (
            valid and (req_id is None or is_id(req_id)) and (req_id is not None or not environments)
        )
    except (ValueError, TypeError, KeyError, AttributeError, EnvdError) as err:
        raise _corrupt(name, store_url, str(err)) from err
    if not valid:
        raise _corrupt(name, store_url, f"not a `{ALIAS_FORMAT}` record of `{name}`")
    return Alias(name, req_id, environments, history)


def _move(doc: dict[str, Any]) -> AliasMove:
    when, who, action = (doc[k] for k in ("when", "who", "action"))
    if not all(isinstance(v, str) for v in (when, who, action)):
        raise ValueError("a history entry's `when`, `who` and `action` are strings")
    return AliasMove(when, who, action, _target(doc["from"]), _target(doc["to"]))


def _target(doc: dict[str, Any] | None) -> AliasTarget | None:
    if doc is None:
        return None
    full_ids = {check_platform(p): _full_id(f) for p, f in doc["full_ids"].items()}
    if not is_id(doc["req_id"]):
        raise ValueError(f"req_id `{doc['req_id']}` is not an id")
    return AliasTarget(doc["req_id"], full_ids)


def _full_id(value: Any) -> str:
    if not isinstance(value, str) or not is_id(value):
        raise ValueError(f"full_id `{value}` is not an id")
    return value


def _digest(value: Any) -> str:
    if not isinstance(value, str) or not DIGEST_PATTERN.match(value):
        raise ValueError(f"digest `{value}` is not `sha256:` and 64 hex characters")
    return value


def _corrupt(name: AliasName, store_url: str, why: str) -> CorruptObjectError:
    return CorruptObjectError(
        f"failed to read alias `{name}` (`{name.key}`) in store `{store_url}`: {why}",
        hint=f"point it again with `envd-client alias set {name} ID`",
    )
