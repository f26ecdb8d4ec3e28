"""`envd-client lock`, `export` and `diff`: an environment found by id or alias (as `show`
finds it), written as lock files or pinned specs, or compared with another."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import ClientConfig
    from .readers import EnvironmentReader


def environment_of(
    reader: EnvironmentReader, text: str, platforms: list[str]
) -> tuple[str, str | None, dict[str, dict[str, Any]]]:
    """The req_id, the alias (when `text` is one) and the description per platform that `text`
    names; refused when they belong to several req_ids or repeat a platform."""
    from envd.aliases import looks_like_alias, parse_alias

    from .lookup import one_environment

    hint = "give `req_id:full_id`, a req_id, or an alias: one environment per platform"
    req_id, rows = one_environment(reader, text, platforms, hint)
    alias = str(parse_alias(text)) if looks_like_alias(text) else None
    return req_id, alias, {platform: row.description for platform, row in rows.items()}


def cmd_lock(args: argparse.Namespace, config: ClientConfig) -> int:
    from . import render
    from .lock_export import write_lock
    from .session import open_reader

    with open_reader(config) as reader:
        req_id, alias, descriptions = environment_of(reader, args.id, args.arch)
    written = write_lock(descriptions, args.format, args.output, req_id=req_id, alias=alias)
    if args.json:
        render.print_json({"format": args.format, "req_id": req_id, "alias": alias,
                           "platforms": sorted(descriptions),
                           "files": [str(p) for p in written]})  # fmt: skip
    else:
        for path in written:
            print(f"wrote {path} ({args.format}, req_id {req_id})")
    return 0


def cmd_export(args: argparse.Namespace, config: ClientConfig) -> int:
    from pathlib import Path

    from .env_export import render_export
    from .lock_export import write_file
    from .session import open_reader

    with open_reader(config) as reader:
        _, _, descriptions = environment_of(reader, args.id, [])
    data = render_export(descriptions, args.format, args.platform)
    if args.output is None:
        sys.stdout.write(data.decode())
    else:
        write_file(Path(args.output), data)
        print(f"wrote {args.output} ({args.format})", file=sys.stderr)
    return 0


def cmd_diff(args: argparse.Namespace, config: ClientConfig) -> int:
    from . import render
    from .diff import diff_environments, diff_text
    from .session import open_reader

    with open_reader(config) as reader:
        old_req, _, old = environment_of(reader, args.old, args.arch)
        new_req, _, new = environment_of(reader, args.new, args.arch)
    document = diff_environments(old, new)
    if args.json:
        render.print_json({"old": {"id": args.old, "req_id": old_req},
                           "new": {"id": args.new, "req_id": new_req}, **document})  # fmt: skip
    else:
        sys.stdout.write(diff_text(document, args.old, args.new))
    return 0
