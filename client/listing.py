"""`list` and `show` as people read them: aligned rows, short ids, what was asked for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from envd.redaction import mask_text

if TYPE_CHECKING:
    from envd.catalog import EnvironmentSummary

SHORT_ID = 12  # as shown; any unique prefix of MIN_PREFIX or more is accepted back
MAX_REQUESTED = 48
_KIND_WORDS = {"conda": "conda", "pypi": "PyPI"}


@dataclass(frozen=True, slots=True)
class Listed:
    """One stored environment with the description it names."""

    summary: EnvironmentSummary
    description: dict[str, Any]


def requested_items(spec: dict[str, Any]) -> list[str]:
    """What a canonical spec asks for: python, the conda specs, the PyPI requirements."""
    items = [f"python {spec['python']}"] if spec.get("python") else []
    items += [_with_selector(d["spec"], d.get("selector")) for d in spec.get("conda", [])]
    items += [
        "pypi:" + _with_selector(d["requirement"], d.get("selector")) for d in spec.get("pypi", [])
    ]
    return [mask_text(item) for item in items]  # a URL requirement's password is not shown


def lock_platforms(spec: dict[str, Any]) -> list[str]:
    """The platforms of the lock an environment was imported from (`resolve --from-lock`), in
    the spec's `locked` form; empty for an environment envd solved."""
    return sorted(spec.get("locked") or {})


def lock_line(description: dict[str, Any]) -> str:
    """`show`'s account of an imported lock: its platforms, and this platform's packages by
    kind. The file's format is not kept: the req_id is the packages', whatever file held them."""
    platforms = lock_platforms(description["spec"])
    counts = {"conda": 0, "pypi": 0}
    for p in description["packages"]:
        counts[p["kind"]] = counts.get(p["kind"], 0) + 1
    kinds = ", ".join(f"{n} {_KIND_WORDS.get(k, k)}" for k, n in counts.items() if n)
    return (
        f"Lock: imported with `resolve --from-lock` (not solved), pinning {len(platforms)} "
        f"platform(s): {', '.join(platforms)}; {len(description['packages'])} packages for "
        f"{description['platform']}" + (f" ({kinds})" if kinds else "")
    )


def type_word(description: dict[str, Any]) -> str:
    """`list`'s TYPE: the environment type, `lock:`-prefixed for an imported lock."""
    env_type = str(description["env_type"])
    return f"lock:{env_type}" if lock_platforms(description["spec"]) else env_type


def requested(spec: dict[str, Any], limit: int = MAX_REQUESTED) -> str:
    """The requested specs in short: `python 3.9.*, numpy >=1.20, +3 more`; for an imported
    lock, `lock of 2 platform(s)`."""
    platforms = lock_platforms(spec)
    if platforms:
        return f"lock of {len(platforms)} platform(s)"
    items = requested_items(spec)
    shown: list[str] = []
    for index, item in enumerate(items):
        if shown and len(", ".join([*shown, item])) > limit:
            return ", ".join(shown) + f", +{len(items) - index} more"
        shown.append(item)
    return ", ".join(shown) or "-"


def _with_selector(text: str, selector: str | None) -> str:
    return f"{text} [{selector}]" if selector else text


def when(resolved_at: str) -> str:
    """`2026-12-04T23:48:09.523069Z` → `2026-12-04 23:48 UTC`."""
    return resolved_at[:10] + " " + resolved_at[11:16] + " UTC"


def archives_word(description: dict[str, Any]) -> str:
    packages = description["packages"]
    cached = sum(1 for p in packages if p.get("formats"))
    if packages and cached == len(packages):
        return "cached"
    return "none" if not cached else f"{cached}/{len(packages)}"


def list_text(rows: Sequence[Listed], store_url: str) -> str:
    """One aligned row per stored environment; the store named when it holds none."""
    if not rows:
        return f"no environments in the store `{store_url}`\n"
    header = ["REQ_ID", "PLATFORM", "TYPE", "PKGS", "ARCHIVES", "RESOLVED", "BY", "DEFAULT",
              "REQUESTED"]  # fmt: skip
    table = [header]
    for row in rows:
        s, d = row.summary, row.description
        table.append([
            s.req_id[:SHORT_ID], s.platform, type_word(d), str(len(d["packages"])),
            archives_word(d), when(s.resolved_at), d["resolved_by"]["user"],
            "yes" if s.is_default else "no", requested(d["spec"]),
        ])  # fmt: skip
    return aligned(table, right={3})


def aligned(table: list[list[str]], right: frozenset[int] | set[int] = frozenset()) -> str:
    """Columns padded to their widest cell (`right`: numbers, right-aligned), two spaces apart."""
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = []
    for row in table:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def list_json(rows: Sequence[Listed], store_url: str) -> dict[str, Any]:
    """The fields `list --json` always had, then the readable ones."""
    return {
        "store": store_url,
        "environments": [
            {
                "req_id": r.summary.req_id,
                "platform": r.summary.platform,
                "full_id": r.summary.full_id,
                "resolved_at": r.summary.resolved_at,
                "is_default": r.summary.is_default,
                "env_type": r.description["env_type"],
                "packages": len(r.description["packages"]),
                "archives": archives_word(r.description),
                "resolved_by": r.description["resolved_by"],
                "channels": r.description["spec"].get("channels", []),
                "requested": requested_items(r.description["spec"]),
                "lock_platforms": lock_platforms(r.description["spec"]),
            }
            for r in rows
        ],
    }
