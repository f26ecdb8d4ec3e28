"""`envd-client delete ID|ALIAS` and `envd-client gc`: taking environments and unneeded
archives out of the store."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import ClientConfig


def cmd_delete(args: argparse.Namespace, config: ClientConfig) -> int:
    from envd.errors import EnvironmentInUseError

    from . import render
    from .lookup import find
    from .session import open_writer

    done = []
    with open_writer(config) as (reader, writer):
        rows = find(reader, args.id, args.arch)
        if not args.force:  # refuse before deleting any, not half-way through
            aliases = reader.list_aliases()
            for row in rows:
                s = row.summary
                naming = [str(a.name) for a in aliases if a.req_id == s.req_id
                          and a.environments.get(s.platform, ("",))[0] == s.full_id]  # fmt: skip
                if naming:
                    raise EnvironmentInUseError(
                        f"failed to delete `{s.req_id}:{s.full_id}` on `{s.platform}`: alias(es) "
                        + ", ".join(f"`{n}`" for n in naming) + " point at it",
                        hint="point them elsewhere first, or pass `--force` to delete it and "
                        "take it out of them (recorded in their history)",
                    )  # fmt: skip
        for row in rows:
            s = row.summary
            done.append(
                writer.delete_environment(s.req_id, s.platform, s.full_id, force=args.force)
            )
    if args.json:
        render.print_json({"deleted": [
            {"req_id": d.req_id, "platform": d.platform, "full_id": d.full_id,
             "default_removed": d.default_removed, "aliases_updated": list(d.aliases_updated)}
            for d in done
        ]})  # fmt: skip
        return 0
    for d in done:
        notes = ["its default pointer too"] if d.default_removed else []
        if d.aliases_updated:
            notes.append("taken out of " + ", ".join(d.aliases_updated))
        extra = f" ({'; '.join(notes)})" if notes else ""
        print(f"deleted {d.req_id}:{d.full_id} on {d.platform}{extra}")
    return 0


def cmd_gc(args: argparse.Namespace, config: ClientConfig) -> int:
    from . import render
    from .session import open_writer

    with open_writer(config) as (_, writer):
        report = writer.collect_garbage(dry_run=args.dry_run, grace=args.grace)
    if args.json:
        render.print_json({
            "dry_run": args.dry_run, "removed": list(report.removed),
            "removed_bytes": report.removed_bytes, "kept_young": report.kept_young,
            "unreadable": list(report.unreadable),
        })  # fmt: skip
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for key in report.removed:
        print(f"{verb} {key}")
    print(
        f"{verb} {len(report.removed)} object(s), {report.removed_bytes} bytes; kept "
        f"{report.kept_young} unreferenced younger than {args.grace:g} s"
    )
    for key in report.unreadable:
        print(f"warning: `{key}` is not readable (never served): the archives it named are not "
              "known", file=sys.stderr)  # fmt: skip
    return 0
