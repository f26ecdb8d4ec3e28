"""How results look: human text on stdout, progress on stderr, or one JSON document."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from envd.catalog import EnvironmentSummary
from envd.errors import error_to_dict
from envd.progress import Outcome, ResolveEvent, Stage

from .api import ResolveResult


def package_rows(description: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The packages[] of the JSON output: what scripts need to fetch and verify each archive."""
    if not description:
        return []
    return [
        {
            "name": p["name"],
            "version": p["version"],
            "build": p.get("build", ""),
            "kind": p["kind"],
            "filename": p["filename"],
            "url": p["url"],
            "sha256": p["sha256"],
        }
        for p in description["packages"]
    ]


def result_json(result: ResolveResult) -> dict[str, Any]:
    environments = []
    for platform, event in result.events.items():
        entry: dict[str, Any] = {
            "platform": platform,
            "full_id": event.full_id or None,
            "outcome": str(event.outcome) if event.outcome else None,
            "status": str(event.stage),
            "job_id": event.job_id or None,
            "packages": package_rows(event.description),
        }
        if event.error is not None:
            entry["error"] = error_to_dict(event.error)
        environments.append(entry)
    return {"req_id": result.req_id, "environments": environments}


def print_json(document: Any, out: TextIO = sys.stdout) -> None:
    out.write(json.dumps(document, indent=2, sort_keys=False) + "\n")


def environment_text(
    description: dict[str, Any],
    outcome: str,
    is_default: bool | None = None,
    present: dict[str, list[dict[str, Any]]] | None = None,
) -> str:
    resolved_by = description["resolved_by"]
    lines = [
        f"### Environment for {description['platform']} ###",
        f"Environment type: {description['env_type']}",
        f"Identifier: {description['req_id']}:{description['full_id']}",
        f"Outcome: {outcome}" if outcome else "",
        f"Resolved on {description['resolved_at']} by {resolved_by['user']}"
        f" (agent {resolved_by['agent']} on {resolved_by['host']})",
        f"Solver: {description['solver']['name']} {description['solver']['version']}",
    ]
    if is_default is not None:
        lines.append(f"Default for its req_id: {'yes' if is_default else 'no'}")
    packages = description["packages"]
    lines.append(f"Packages ({len(packages)}):")
    width = max((len(p["name"]) for p in packages), default=0)
    vwidth = max((len(p["version"]) for p in packages), default=0)
    for p in packages:
        row = f"  {p['name']:<{width}}  {p['version']:<{vwidth}}  {p.get('build', ''):<24}"
        row += f"  {p['filename']}"
        if present is not None:
            row += f"  [{_formats_cell(present.get(p['filename'], []))}]"
        lines.append(row)
    return "\n".join(line for line in lines if line) + "\n"


def _formats_cell(formats: list[dict[str, Any]]) -> str:
    """`.conda (transmuted) .tar.bz2` — `missing` marks a listed format absent from the store."""
    if not formats:
        return "not cached"
    cells = []
    for f in formats:
        cell = f["format"] + (" (transmuted)" if f.get("transmuted_from") else "")
        cells.append(cell if f["present"] else f"{cell} missing")
    return ", ".join(cells)


def result_text(result: ResolveResult) -> str:
    blocks = []
    for platform, event in result.events.items():
        if event.stage is Stage.DONE and event.description is not None:
            blocks.append(environment_text(event.description, str(event.outcome)))
        elif event.stage is Stage.FAILED or event.outcome is Outcome.FAILED:
            err = event.error
            text = f"### Environment for {platform} ###\nOutcome: failed\n"
            if err is not None:
                text += f"error: {err.message}\n" + (f"hint: {err.hint}\n" if err.hint else "")
            blocks.append(text)
        else:
            blocks.append(
                f"### Environment for {platform} ###\nOutcome: {event.outcome} (accepted)\n"
                f"Job: {event.job_id}  (follow it with `envd-client wait {event.job_id}`)\n"
            )
    return "\n".join(blocks) + summary_text(result)


def summary_text(result: ResolveResult) -> str:
    """One line per platform, last, so the outcome is what a terminal shows at the end."""
    width = max((len(p) for p in result.events), default=0)
    lines = ["", "### Summary ###"]
    for platform, event in result.events.items():
        outcome = str(event.outcome) if event.outcome else str(event.stage)
        ident = f"{result.req_id}:{event.full_id}" if event.full_id else (event.job_id or "")
        lines.append(f"{platform:<{width}}  {outcome:<9}  {ident}".rstrip())
    return "\n".join(lines) + "\n"


def summaries_text(summaries: list[EnvironmentSummary]) -> str:
    if not summaries:
        return "no environments in the store\n"
    lines = [f"{'REQ_ID:FULL_ID':<81}  {'PLATFORM':<14}  {'RESOLVED_AT':<20}  DEFAULT"]
    for s in summaries:
        lines.append(
            f"{s.req_id}:{s.full_id}  {s.platform:<14}  {s.resolved_at:<20}  "
            f"{'yes' if s.is_default else ''}"
        )
    return "\n".join(lines) + "\n"


class ProgressPrinter:
    """One line per platform event on stderr; on a TTY the line is rewritten in place."""

    def __init__(self, stream: TextIO = sys.stderr, quiet: bool = False) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.quiet = quiet

    def __call__(self, event: ResolveEvent) -> None:
        if self.quiet:
            return
        words = [f"{event.platform}: {event.stage}"]
        if event.outcome is not None:
            words.append(f"({event.outcome})")
        if event.message:
            words.append(f"- {event.message}")
        if event.error is not None:
            words.append(f"- {event.error.message}")
        line = " ".join(words)
        if self.tty and not event.stage.terminal:
            self.stream.write(f"\r\033[K{line}")
        else:
            self.stream.write(("\r\033[K" if self.tty else "") + line + "\n")
        self.stream.flush()
