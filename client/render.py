"""How results look: human text on stdout, progress on stderr, or one JSON document."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from envd.errors import error_to_dict
from envd.progress import Outcome, ResolveEvent, Stage
from envd.redaction import mask_text, masked
from envd.requirements_txt import DEFAULT_INDEX_URL

from .colour import Palette
from .listing import aligned, lock_line, lock_platforms, requested_items
from .progress_view import job_word, seconds
from .result import ResolveResult

_PLAIN = Palette(False)


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
            # a wheel envd built: its source (URL, sha256 that full_id counts), agent, platform
            **({"built": p["built"]} if p.get("built") else {}),
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


def print_json(document: Any, out: TextIO | None = None) -> None:
    """The one JSON printer: credentials in URLs (PyPI index passwords) are masked. It writes
    to `sys.stdout` as it is at the call (as `print` does), so a redirected stdout gets it."""
    stream = sys.stdout if out is None else out
    stream.write(json.dumps(masked(document), indent=2, sort_keys=False) + "\n")


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
        "Channels: " + (", ".join(description["spec"].get("channels", [])) or "(none)"),
        _indexes_line(description["spec"]),
        _requested_line(description),
    ]
    if is_default is not None:
        lines.append(f"Default for its req_id: {'yes' if is_default else 'no'}")
    packages = description["packages"]
    lines.append(f"Packages ({len(packages)}):")
    table = []
    for p in packages:
        row = ["", p["name"], p["version"], p.get("build", ""), p["filename"]]
        if present is not None:
            row.append(f"[{_formats_cell(present.get(p['filename'], []))}]")
        table.append(row)
    if table:
        lines.append(aligned(table).rstrip("\n"))
    lines += _built_lines(packages)
    return mask_text("\n".join(line for line in lines if line) + "\n")


def _built_lines(packages: list[dict[str, Any]]) -> list[str]:
    """Wheels envd built (no wheel for the target on the index): from which source, by which
    agent — what `built` records and full_id counts (the source's sha256)."""
    built = [p for p in packages if p.get("built")]
    if not built:
        return []
    rows = [["", p["name"], p["version"], f"agent {p['built']['agent']}",
             f"from {p['built']['source']}", f"sha256 {p['built']['sha256'][:12]}"]
            for p in built]  # fmt: skip
    return [f"Built by envd ({len(built)}):", aligned(rows).rstrip("\n")]


def _requested_line(description: dict[str, Any]) -> str:
    """What was asked for; for an imported lock (which asks for nothing), the lock."""
    if lock_platforms(description["spec"]):
        return "Requested: the packages of a lock file\n" + lock_line(description)
    return "Requested: " + (", ".join(requested_items(description["spec"])) or "(nothing)")


def _indexes_line(spec: dict[str, Any]) -> str:
    """The PyPI indexes of a spec with PyPI requirements (pypi-only or mixed), else nothing."""
    if not spec.get("pypi"):
        return ""
    links = spec.get("pypi_find_links", [])
    return (
        "PyPI indexes: "
        + (", ".join(spec.get("pypi_indexes", [])) or f"{DEFAULT_INDEX_URL}")
        + (f"; find-links: {', '.join(links)}" if links else "")
    )


def _formats_cell(formats: list[dict[str, Any]]) -> str:
    """`.conda (transmuted) .tar.bz2` — `missing` marks a listed format absent from the store."""
    if not formats:
        return "not cached"
    cells = []
    for f in formats:
        cell = f["format"] + (" (transmuted)" if f.get("transmuted_from") else "")
        cells.append(cell if f["present"] else f"{cell} missing")
    return ", ".join(cells)


def result_text(
    result: ResolveResult,
    elapsed: Mapping[str, float] | None = None,
    palette: Palette = _PLAIN,
    *,
    quiet: bool = False,
) -> str:
    """Each platform's environment (or its error, printed here once), then the summary;
    `quiet` prints the summary alone."""
    if quiet:  # the summary alone, and each error (printed nowhere else)
        errors = [
            f"{palette.word('error:')} {platform}: {e.error.message}\n"
            + (f"{palette.word('hint:')} {e.error.hint}\n" if e.error.hint else "")
            for platform, e in result.events.items()
            if e.error is not None
        ]
        return mask_text("".join(errors) + summary_text(result, elapsed, palette, header=False))
    blocks = []
    for platform, event in result.events.items():
        if event.stage is Stage.DONE and event.description is not None:
            blocks.append(environment_text(event.description, palette.word(str(event.outcome))))
        elif event.stage is Stage.FAILED or event.outcome is Outcome.FAILED:
            err = event.error
            text = f"### Environment for {platform} ###\nOutcome: {palette.word('failed')}\n"
            if err is not None:
                text += f"{palette.word('error:')} {err.message}\n"
                text += f"{palette.word('hint:')} {err.hint}\n" if err.hint else ""
            blocks.append(text)
        else:
            blocks.append(
                f"### Environment for {platform} ###\nStatus: {job_word(event)}, {event.stage}\n"
                f"Job: {event.job_id}  (follow it with `envd-client wait {event.job_id}`)\n"
            )
    return mask_text("\n".join(blocks) + summary_text(result, elapsed, palette))


def summary_text(
    result: ResolveResult,
    elapsed: Mapping[str, float] | None = None,
    palette: Palette = _PLAIN,
    *,
    header: bool = True,
) -> str:
    """One line per platform, last, so the outcome is what a terminal shows at the end:
    the outcome word once the platform has ended, and how long it took (not for cache hits)."""
    width = max((len(p) for p in result.events), default=0)
    took = elapsed or {}
    words = {p: _summary_word(e) for p, e in result.events.items()}
    wide = max([9, *(len(w) for w in words.values())])
    lines = ["", "### Summary ###"] if header else []
    for platform, event in result.events.items():
        word = words[platform]
        shown = palette.word(word) + " " * (wide - len(word))
        hit = event.outcome is Outcome.CACHE_HIT
        time = "" if hit or platform not in took else seconds(took[platform])
        ident = f"{result.req_id}:{event.full_id}" if event.full_id else (event.job_id or "")
        cells = [f"{platform:<{width}}", shown, f"{time:>7}" if elapsed is not None else "", ident]
        lines.append("  ".join(c for c in cells if c).rstrip())
    return "\n".join(lines) + "\n"


def _summary_word(event: ResolveEvent) -> str:
    """The outcome once a platform has ended; until then, this request's part in the job."""
    ended = event.stage.terminal or event.outcome is Outcome.FAILED
    return str(event.outcome) if ended and event.outcome else job_word(event)
