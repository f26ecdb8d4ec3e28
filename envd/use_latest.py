"""The remote-latest policy (`--use-latest`): which already-resolved environments of a req_id
may answer a request — the shared default, the newest resolved by the caller or by listed
users, or none. The coordinator decides it per request."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from envd.errors import ConfigError

_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")
FORMS = (
    "valid forms: `any` (the shared default), `mine` (the newest resolved by you), `none` "
    "(always resolve anew), or `USER[,USER…]` (the newest resolved by one of these users)"
)


class UseLatestMode(StrEnum):
    ANY = "any"
    MINE = "mine"
    NONE = "none"
    USERS = "users"


@dataclass(frozen=True, slots=True)
class UseLatest:
    mode: UseLatestMode = UseLatestMode.ANY
    users: tuple[str, ...] = ()

    def __str__(self) -> str:
        return ",".join(self.users) if self.mode is UseLatestMode.USERS else str(self.mode)

    @property
    def shared(self) -> bool:
        """Whether the shared default answers (the only mode the cache-hit fast path serves)."""
        return self.mode is UseLatestMode.ANY

    def resolvers(self, caller: str) -> frozenset[str]:
        """Whose resolutions may answer, for `mine` and user lists."""
        return frozenset((caller,) if self.mode is UseLatestMode.MINE else self.users)


ANY = UseLatest()


def parse_use_latest(text: str, source: str = "--use-latest") -> UseLatest:
    """`any`, `mine`, `none`, or `USER[,USER…]`; empty means `any`."""
    value = text.strip()
    if not value:
        return ANY
    if value in (UseLatestMode.ANY, UseLatestMode.MINE, UseLatestMode.NONE):
        return UseLatest(UseLatestMode(value))
    users = tuple(dict.fromkeys(u.strip() for u in value.split(",")))
    if not all(_USER.match(u) for u in users) or set(users) & {"any", "mine", "none"}:
        raise ConfigError(f"invalid {source} `{text}`", hint=FORMS)
    return UseLatest(UseLatestMode.USERS, users)
