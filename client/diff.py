"""What changed between two environments, per platform: packages added, removed and changed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Descriptions = Mapping[str, Mapping[str, Any]]
PackageKey = tuple[str, str]  # (kind, name): a description holds each once


def diff_environments(old: Descriptions, new: Descriptions) -> dict[str, Any]:
    """Per platform of either side (sorted): the full_id on each side (None where that side
    has no such platform) and the packages `added`, `removed` and `changed` (version, build,
    or the archive itself), each with `name`, `kind`, `old_version`, `old_build`,
    `new_version`, `new_build`, sorted by (kind, name)."""
    platforms: dict[str, Any] = {}
    for platform in sorted(set(old) | set(new)):
        before, after = old.get(platform), new.get(platform)
        a = _by_key(before)
        b = _by_key(after)
        platforms[platform] = {
            "old_full_id": None if before is None else before["full_id"],
            "new_full_id": None if after is None else after["full_id"],
            "added": [_row(k, None, b[k]) for k in sorted(b.keys() - a.keys())],
            "removed": [_row(k, a[k], None) for k in sorted(a.keys() - b.keys())],
            "changed": [
                _row(k, a[k], b[k]) for k in sorted(a.keys() & b.keys()) if _differs(a[k], b[k])
            ],
        }
    return {"platforms": platforms}


def _by_key(description: Mapping[str, Any] | None) -> dict[PackageKey, Mapping[str, Any]]:
    if description is None:
        return {}
    return {(p["kind"], p["name"]): p for p in description["packages"]}


def _differs(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """What full_id counts: a wheel envd built by its source's sha256 (a rebuild of the same
    source is not a change)."""
    fields = ("version", "build", "filename")
    return any(a.get(f, "") != b.get(f, "") for f in fields) or _counted(a) != _counted(b)


def _counted(p: Mapping[str, Any]) -> str:
    built = p.get("built")
    return str(built["sha256"] if built else p.get("sha256", ""))


def _row(
    key: PackageKey, a: Mapping[str, Any] | None, b: Mapping[str, Any] | None
) -> dict[str, Any]:
    kind, name = key
    return {
        "name": name,
        "kind": kind,
        "old_version": None if a is None else a["version"],
        "old_build": None if a is None else a.get("build", ""),
        "new_version": None if b is None else b["version"],
        "new_build": None if b is None else b.get("build", ""),
    }


def diff_text(document: Mapping[str, Any], old_name: str, new_name: str) -> str:
    """One block per platform: `+` added, `-` removed, `~` changed, in aligned columns, and a
    count line."""
    out = [f"--- {old_name}", f"+++ {new_name}"]
    for platform, entry in document["platforms"].items():
        old_id, new_id = entry["old_full_id"], entry["new_full_id"]
        out.append(f"{platform}: {_short(old_id)} → {_short(new_id)}")
        rows = [("+", r) for r in entry["added"]] + [("-", r) for r in entry["removed"]]
        rows += [("~", r) for r in entry["changed"]]
        rows.sort(key=lambda row: (row[1]["kind"], row[1]["name"]))
        if not rows:
            out.append("  (no package differs)")
        width = max((len(r["name"]) for _, r in rows), default=0)
        for mark, r in rows:
            out.append(f"  {mark} {r['name']:<{width}}  {r['kind']:<5}  {_pin(r, mark)}")
        out.append(
            f"  {len(entry['added'])} added, {len(entry['removed'])} removed, "
            f"{len(entry['changed'])} changed"
        )
    return "\n".join(out) + "\n"


def _pin(row: Mapping[str, Any], mark: str) -> str:
    old = " ".join(v for v in (row["old_version"], row["old_build"]) if v)
    new = " ".join(v for v in (row["new_version"], row["new_build"]) if v)
    if mark == "+":
        return new
    if mark == "-":
        return old
    return f"{old} → {new}"


def _short(full_id: str | None) -> str:
    return "(none)" if full_id is None else full_id[:12]
