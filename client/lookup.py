"""Finding environments by id as git finds commits: a req_id, a full_id, `req_id:full_id`,
or any unique prefix of at least 8 characters of each; or by alias (`namespace/name[:tag]`)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from envd.aliases import looks_like_alias
from envd.errors import AmbiguousIdError, EnvironmentNotFoundError, InvalidSpecError, UnknownIdError

from .listing import SHORT_ID, Listed
from .readers import EnvironmentReader

if TYPE_CHECKING:
    from envd.catalog import EnvironmentSummary

MIN_PREFIX = 8
ID_LENGTH = 40
CLOSEST = 3
SIMILAR = 0.7  # one wrong character in 8 still counts; chance overlaps of hex do not
_HEX = re.compile(r"^[0-9a-f]+$")


def check_id(text: str, whole: str) -> str:
    ident = text.strip().lower()
    if not _HEX.match(ident) or not MIN_PREFIX <= len(ident) <= ID_LENGTH:
        raise InvalidSpecError(
            f"`{whole}` is not an environment id",
            hint=f"give a req_id or full_id (40 hex characters, or a unique prefix of at least "
            f"{MIN_PREFIX}), or `req_id:full_id`",
        )
    return ident


def find(reader: EnvironmentReader, text: str, platforms: Sequence[str] = ()) -> list[Listed]:
    """The environments `text` names: a req_id's default per platform (of `platforms`, or
    every one resolved), a full_id's descriptions, the one `req_id:full_id` names, or what an
    alias names (on `platforms`, or every platform it names)."""
    if looks_like_alias(text):
        return _by_alias(reader, text, platforms)
    req_part, colon, full_part = text.partition(":")
    req = check_id(req_part, text)
    full = check_id(full_part, text) if colon else ""
    summaries = reader.list_environments()
    if colon:
        req_id = _unique(req, {s.req_id for s in summaries}, text, "req_id", summaries, reader)
        of_req = [s for s in summaries if s.req_id == req_id]
        full_id = _unique(full, {s.full_id for s in of_req}, text, "full_id", of_req, reader)
        rows = [s for s in of_req if s.full_id == full_id]
    else:
        ids = {s.req_id for s in summaries} | {s.full_id for s in summaries}
        ident = _unique(req, ids, text, "id", summaries, reader)
        rows = [s for s in summaries if s.full_id == ident]
        if not rows:
            rows = _defaults(ident, [s for s in summaries if s.req_id == ident], platforms)
    by_full_id = bool(colon or (rows and rows[0].full_id == ident))
    wanted = [s for s in rows if not platforms or s.platform in platforms]
    # a full_id names its platform: keep it, for the caller to refuse in its own words
    rows = wanted or (rows if by_full_id else [])
    if not rows:
        raise EnvironmentNotFoundError(
            f"no environment `{text}` on {', '.join(f'`{p}`' for p in platforms)}",
            hint="resolve it for that platform first with `envd-client resolve`",
        )
    return [Listed(s, reader.describe(s)) for s in rows]


def _by_alias(reader: EnvironmentReader, text: str, platforms: Sequence[str]) -> list[Listed]:
    from envd.catalog import EnvironmentSummary

    alias = reader.get_alias(text)
    missing = [p for p in platforms if p not in alias.environments]
    if missing:
        raise EnvironmentNotFoundError(
            f"alias `{alias.name}` names no environment on " + ", ".join(f"`{p}`" for p in missing),
            hint="it names: " + (", ".join(f"`{p}`" for p in sorted(alias.environments))),
        )
    rows = []
    for platform in platforms or sorted(alias.environments):
        description, is_default = reader.describe_alias(alias, platform)
        summary = EnvironmentSummary(
            description["req_id"], platform, description["full_id"],
            description["resolved_at"], is_default,
        )  # fmt: skip
        rows.append(Listed(summary, description))
    return rows


def one_environment(
    reader: EnvironmentReader, text: str, platforms: Sequence[str], hint: str
) -> tuple[str, dict[str, Listed]]:
    """The req_id and the environment per platform that an id or alias names; refused (with
    `hint`) when they belong to several req_ids or repeat a platform."""
    rows = find(reader, text, platforms)
    req_ids = sorted({row.summary.req_id for row in rows})
    by_platform = {row.summary.platform: row for row in rows}
    if len(req_ids) > 1 or len(by_platform) < len(rows):
        raise AmbiguousIdError(
            f"`{text}` names {len(rows)} environments of req_id(s) "
            + ", ".join(f"`{r}`" for r in req_ids),
            hint=hint,
        )
    return req_ids[0], by_platform


def target_of(
    reader: EnvironmentReader, text: str, platforms: Sequence[str]
) -> tuple[str, dict[str, str]]:
    """The req_id and full_id per platform that an id or alias names (what `alias set` points
    an alias at); refused when they belong to several req_ids."""
    hint = "an alias points at one req_id: give `req_id:full_id`"
    req_id, rows = one_environment(reader, text, platforms, hint)
    return req_id, {platform: row.summary.full_id for platform, row in rows.items()}


def _defaults(
    req_id: str, rows: list[EnvironmentSummary], platforms: Sequence[str]
) -> list[EnvironmentSummary]:
    """Per platform, its default (a req_id names the environment its default points at)."""
    wanted = platforms or sorted({s.platform for s in rows})
    return [s for s in rows if s.is_default and s.platform in wanted]


def _unique(
    prefix: str,
    ids: set[str],
    text: str,
    kind: str,
    summaries: Sequence[EnvironmentSummary],
    reader: EnvironmentReader,
) -> str:
    matches = sorted(i for i in ids if i.startswith(prefix))
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise AmbiguousIdError(
            f"`{text}` is ambiguous: {len(matches)} ids start with `{prefix}`: "
            + ", ".join(f"`{m}` ({_kind(m, summaries)})" for m in matches),
            hint="give more characters of the one you mean",
        )
    closest = closest_ids(prefix, ids)
    hint = f"`envd-client list` shows what the store `{reader.store_url}` holds"
    if closest:
        hint = "closest: " + ", ".join(f"`{c[:SHORT_ID]}` ({_kind(c, summaries)})" for c in closest)
    raise UnknownIdError(f"no environment with {kind} `{prefix}`", hint=hint)


def closest_ids(prefix: str, ids: set[str], count: int = CLOSEST) -> list[str]:
    """The ids whose start looks most like `prefix` (a mistyped or mis-pasted id)."""
    scored = [
        (difflib.SequenceMatcher(None, prefix, i[: len(prefix)]).ratio(), i) for i in sorted(ids)
    ]
    good = sorted((s for s in scored if s[0] >= SIMILAR), key=lambda s: -s[0])
    return [i for _, i in good[:count]]


def _kind(ident: str, summaries: Sequence[EnvironmentSummary]) -> str:
    return "req_id" if any(s.req_id == ident for s in summaries) else "full_id"
