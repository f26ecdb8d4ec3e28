"""What `pre-deploy` gives back: per step and platform, the environment (or the error), as the
JSON a scheduler embeds, the table people read, and the report of the steps that failed."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envd.errors import EnvdError, error_to_dict
from envd.redaction import mask_text, masked
from envd.store.layout import description_key

from .listing import SHORT_ID, aligned

RESULT_FORMAT = "envd-pre-deploy-v1"
CONFIRMED = "confirmed"  # an alias's environment: it exists and verifies (nothing resolved)
FAILED = "failed"
RESOLVE_FAILED_EXIT = 3  # `resolve`'s code when a platform failed without a typed error


@dataclass(frozen=True, slots=True)
class PlatformResult:
    """One row: a step's environment on one platform. `full_id` empty: it failed (`error`)."""

    platform: str
    req_id: str
    full_id: str
    outcome: str  # cache_hit, resolved, dedup (from `resolve`), confirmed (alias), failed
    store_url: str  # where the description is in the store
    error: EnvdError | None = None

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "req_id": self.req_id or None,
            "full_id": self.full_id or None,
            "outcome": self.outcome,
            "store_url": self.store_url or None,
        }
        if self.error is not None:
            entry["error"] = error_to_dict(self.error)
        return entry


@dataclass(frozen=True, slots=True)
class StepResult:
    name: str
    alias: str | None  # the alias the step names, else None (a spec)
    platforms: tuple[PlatformResult, ...]
    error: EnvdError | None = None  # the step's own failure (its spec), else its first platform's

    @property
    def failed(self) -> bool:
        return self.error is not None or any(p.error is not None for p in self.platforms)

    @property
    def first_error(self) -> EnvdError | None:
        return self.error or next((p.error for p in self.platforms if p.error), None)

    def to_json(self) -> dict[str, Any]:
        error = self.first_error
        return {
            "ok": not self.failed,
            "alias": self.alias,
            "platforms": {p.platform: p.to_json() for p in self.platforms},
            "error": None if error is None else error_to_dict(error),
        }


@dataclass(frozen=True, slots=True)
class PreDeployResult:
    """Every step of a manifest, in its order; `store` is the coordinator's store URL."""

    manifest: str
    name: str
    store: str
    steps: tuple[StepResult, ...]

    @property
    def ok(self) -> bool:
        return not self.failed_steps

    @property
    def failed_steps(self) -> list[StepResult]:
        return [s for s in self.steps if s.failed]

    @property
    def exit_code(self) -> int:
        """0 when every step is ready; else the first failed step's error's code, as `resolve`
        exits (2 bad input, 3 resolution failed, 4 missing environment or agent, …)."""
        failed = self.failed_steps
        if not failed:
            return 0
        error = failed[0].first_error
        return error.exit_code if error is not None else RESOLVE_FAILED_EXIT

    def to_json(self) -> dict[str, Any]:
        """The document `--output` writes and `--json` prints (docs/pre-deploy.md)."""
        document = {
            "schema": RESULT_FORMAT,
            "manifest": self.manifest,
            "name": self.name,
            "ok": self.ok,
            "store": store_root_url(self.store),
            "steps": {s.name: s.to_json() for s in self.steps},
            "failed": [
                {"step": s.name, "error": error_to_dict(s.first_error)}
                for s in self.failed_steps
                if s.first_error is not None
            ],
        }
        result: dict[str, Any] = masked(document)
        return result


def store_root_url(store_url: str) -> str:
    """The store as a URL: `s3://…`, `gs://…`, `az://…` as given, a folder as `file://`."""
    if "://" in store_url:
        return store_url.rstrip("/")
    path = Path(store_url).expanduser()
    return path.as_uri() if path.is_absolute() else store_url.rstrip("/")


def description_url(store_url: str, req_id: str, platform: str, full_id: str) -> str:
    """Where a description lives: the store's URL and its key (envd/store/layout.py)."""
    return f"{store_root_url(store_url)}/{description_key(req_id, platform, full_id)}"


def result_table(result: PreDeployResult) -> str:
    """One row per step and platform; ids as `list` shows them (any unique prefix works)."""
    table = [["STEP", "PLATFORM", "REQ_ID", "FULL_ID", "OUTCOME"]]
    for step in result.steps:
        rows = step.platforms or (PlatformResult("-", "", "", FAILED, ""),)
        for row in rows:
            table.append([step.name, row.platform, row.req_id[:SHORT_ID] or "-",
                          row.full_id[:SHORT_ID] or "-", row.outcome])  # fmt: skip
    return aligned(table)


def failure_report(result: PreDeployResult) -> str:
    """Every step that can't be resolved, with its error's reference, message and hint."""
    failed = result.failed_steps
    if not failed:
        return ""
    lines = [f"{len(failed)} of {len(result.steps)} step(s) cannot be deployed:"]
    for step in failed:
        errors = [(None, step.error)] if step.error else [(p.platform, p.error)
                                                          for p in step.platforms if p.error]  # fmt: skip
        for platform, error in errors:
            assert error is not None
            on = f" on {platform}" if platform else ""
            lines.append(f"  {step.name}{on}: {error.reference} {error.message}")
            if error.hint:
                lines.append(f"    hint: {error.hint}")
    return mask_text("\n".join(lines) + "\n")


def write_result(result: PreDeployResult, path: Path) -> None:
    """The JSON result, written whole or not at all (a scheduler may read it at any time)."""
    text = json.dumps(result.to_json(), indent=2) + "\n"
    folder = path.resolve().parent
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
