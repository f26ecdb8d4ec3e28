"""`envd-client alias set|get|list|delete`, and pointing an alias after `resolve --alias`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envd.aliases import Alias, AliasTarget
    from envd.errors import EnvdError

    from .config import ClientConfig
    from .result import ResolveResult
    from .writers import EnvironmentWriter


def cmd_alias(args: argparse.Namespace, config: ClientConfig) -> int:
    from envd.aliases import parse_alias

    from . import render
    from .lookup import target_of
    from .session import open_reader, open_writer

    if args.alias_command == "list":
        with open_reader(config) as reader:
            aliases = reader.list_aliases(args.prefix)
        if args.json:
            render.print_json({"aliases": [_listed_json(a) for a in aliases]})
        else:
            sys.stdout.write(list_text(aliases, args.prefix))
        return 0
    name = str(parse_alias(args.name))  # a bad name is refused before anything is opened
    if args.alias_command == "get":
        with open_reader(config) as reader:
            alias = reader.get_alias(name)
    else:
        with open_writer(config) as (reader, writer):
            if args.alias_command == "set":
                req_id, full_ids = target_of(reader, args.target, args.arch)
                alias = writer.set_alias(name, req_id, full_ids)
            else:
                alias = writer.delete_alias(name)
    if args.json:
        render.print_json(alias.to_json())
    elif args.alias_command == "delete":
        print(f"deleted alias {name}")
    else:
        sys.stdout.write(alias_text(alias))
    return 0


def point_alias(
    name: str, result: ResolveResult, writer: EnvironmentWriter
) -> tuple[Alias | None, EnvdError | None]:
    """After `resolve --alias`: point the alias at every platform resolved, or say why not."""
    from envd.errors import EnvdError, InvalidAliasError

    failed = sorted(p for p, e in result.events.items() if not e.full_id)
    if failed:
        return None, InvalidAliasError(
            f"failed to point alias `{name}`: the resolution did not finish on "
            + ", ".join(f"`{p}`" for p in failed),
            hint="the alias still points where it did; resolve again once the failure is fixed",
        )
    full_ids = {p: e.full_id for p, e in result.events.items()}
    try:
        return writer.set_alias(name, result.req_id, full_ids), None
    except EnvdError as err:
        return None, err


def alias_text(alias: Alias) -> str:
    kind = "write-once" if alias.name.write_once else "moves"
    lines = [f"alias {alias.name} ({kind})", f"req_id {alias.req_id or '-'}"]
    width = max((len(p) for p in alias.environments), default=0)
    lines += [f"  {p:<{width}}  {f}" for p, (f, _) in sorted(alias.environments.items())]
    if alias.history:
        lines.append("history (oldest first):")
        lines += [
            f"  {m.when}  {m.who}  {m.action}: {_short(m.before)} → {_short(m.after)}"
            for m in alias.history
        ]
    return "\n".join(lines) + "\n"


def list_text(aliases: list[Alias], prefix: str) -> str:
    if not aliases:
        return f"no aliases{f' starting with `{prefix}`' if prefix else ''}\n"
    from .listing import SHORT_ID

    width = max(len(str(a.name)) for a in aliases)
    rows = [
        f"{a.name!s:<{width}}  {(a.req_id or '')[:SHORT_ID]}  "
        + ", ".join(f"{p} {f[:SHORT_ID]}" for p, (f, _) in sorted(a.environments.items()))
        for a in aliases
    ]
    return "\n".join(rows) + "\n"


def _short(target: AliasTarget | None) -> str:
    if target is None:
        return "(nothing)"
    from .listing import SHORT_ID

    envs = ", ".join(f"{p} {f[:SHORT_ID]}" for p, f in sorted(target.full_ids.items()))
    return f"{target.req_id[:SHORT_ID]} ({envs})"


def _listed_json(alias: Alias) -> dict[str, Any]:
    document = alias.to_json()
    document.pop("history")  # listings carry none; `alias get` has it
    return document
