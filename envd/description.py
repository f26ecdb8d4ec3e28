"""The description: the JSON document of one environment, checked on write and on read.

The JSON Schema ships as `envd/data/description-v1.schema.json`; on top of it a description's
`full_id` must recompute from its packages, no (kind, name) may appear twice, and its `digest`
must be the sha256 of everything else in it (`description_digest`), so no stored byte of it can
change unnoticed (docs/architecture.md, "Every stored byte is verified").
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema

from envd.errors import CorruptDescriptionError, InternalError
from envd.ids import PackageIdentity, full_id
from envd.spec import Spec
from envd.store.layout import DESCRIPTION_FORMAT

SCHEMA_RESOURCE = "description-v1.schema.json"
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$", re.ASCII)
_MAX_REASON = 160
_READ_HINT = "descriptions are immutable; resolve again with `--force` to write a new one"
DIGEST_FIELD = "digest"
_DIGEST_PREFIX = "sha256:"


@dataclass(frozen=True, slots=True)
class ResolvedBy:
    user: str
    agent: str
    host: str


@dataclass(frozen=True, slots=True)
class SolverInfo:
    name: str
    version: str


@dataclass(frozen=True, slots=True)
class PackageFormat:
    """One cached archive of a package (`.conda`, `.tar.bz2`, `.whl`, …)."""

    format: str
    filename: str
    sha256: str
    size: int
    transmuted_from: str | None = None  # sha256 of the archive envd made this one from


@dataclass(frozen=True, slots=True)
class BuildOrigin:
    """Where a wheel envd built came from: its source (URL) and that source's sha256, the
    agent that built it and the platform it was built on (the target's)."""

    source: str
    sha256: str
    agent: str
    platform: str


@dataclass(frozen=True, slots=True)
class ResolvedPackage:
    """One package of an environment; `channel` is the PyPI index for `pypi` packages."""

    kind: str
    name: str
    version: str
    build: str
    channel: str
    url: str
    filename: str
    sha256: str
    md5: str | None
    size: int | None
    subdir: str
    depends: tuple[str, ...] = ()
    constrains: tuple[str, ...] = ()
    formats: tuple[PackageFormat, ...] = ()
    built: BuildOrigin | None = None
    # conda only, when known (a solve's record, a pixi.lock): kept for lock files written
    # from the description; absent from the JSON when None, so older descriptions are unchanged
    build_number: int | None = None
    noarch: str | None = None

    def identity(self) -> PackageIdentity:
        """A built wheel counts with its source's sha256: wheel builds are not
        byte-reproducible, the same source built again is the same package."""
        sha256 = self.sha256 if self.built is None else self.built.sha256
        return PackageIdentity(
            self.kind, self.name, self.version, self.build, self.filename, sha256
        )


def build_description(
    *,
    req_id: str,
    platform: str,
    spec: Spec,
    packages: Sequence[ResolvedPackage],
    resolved_at: datetime,
    resolved_by: ResolvedBy,
    solver: SolverInfo,
    validate: bool = True,
) -> dict[str, Any]:
    """A validated description; full_id is computed here, packages sorted by (kind, name).
    `validate=False` only for a writer handing it straight to `Catalog.write_description`,
    which validates every document it stores: then it is validated once, not twice."""
    ordered = sorted(packages, key=lambda p: (p.kind, p.name, p.version, p.build, p.filename))
    for p in ordered:
        if p.kind == "pypi" and p.build:
            raise CorruptDescriptionError(
                f"failed to build description: pypi package `{p.name}` has build `{p.build}`",
                hint="pypi packages carry no build string; leave `build` empty",
            )
    doc: dict[str, Any] = {
        "schema": DESCRIPTION_FORMAT,
        "req_id": req_id,
        "full_id": full_id(p.identity() for p in ordered),
        "platform": platform,
        "env_type": str(spec.env_type),
        "spec": spec.to_canonical(),
        "resolved_at": format_timestamp(resolved_at),
        "resolved_by": {
            "user": resolved_by.user,
            "agent": resolved_by.agent,
            "host": resolved_by.host,
        },
        "solver": {"name": solver.name, "version": solver.version},
        "packages": [_package_json(p) for p in ordered],
    }
    sealed = seal_description(doc)
    return validate_description(sealed) if validate else sealed


def description_digest(doc: dict[str, Any]) -> str:
    """`sha256:<hex>` of the description without its `digest`, in the canonical JSON of
    docs/ids.md (sorted keys, no whitespace, UTF-8): how a description is stored does not
    change it, what it says does."""
    content = {k: v for k, v in doc.items() if k != DIGEST_FIELD}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _DIGEST_PREFIX + hashlib.sha256(text.encode()).hexdigest()


def seal_description(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of `doc` carrying the digest of what it now says (for a writer that changed it)."""
    return {**doc, DIGEST_FIELD: description_digest(doc)}


def validate_description(doc: Any, where: str | None = None) -> dict[str, Any]:
    """Return `doc` if it is a valid v1 description, else raise naming the failing field."""
    if not isinstance(doc, dict):
        raise _corrupt(where, "", f"is a JSON {type(doc).__name__}, not an object")
    if DIGEST_FIELD not in doc:
        reason = "is missing: written before envd sealed descriptions, it cannot be verified"
        raise _corrupt(where, DIGEST_FIELD, reason)
    if not _fast_check(doc):  # compiled check first; jsonschema only to explain a failure
        from jsonschema.exceptions import best_match  # only to explain a failure: slow import

        error = best_match(_validator().iter_errors(doc))
        if error is not None:
            path, reason = _explain(error)
            raise _corrupt(where, path, reason)
    identities = _identities(doc["packages"])
    expected = full_id(identities)
    if doc["full_id"] != expected:
        reason = f"is `{doc['full_id']}` but the packages hash to `{expected}`"
        raise _corrupt(where, "full_id", reason)
    _check_unique(doc["packages"], where)
    if parse_timestamp(doc["resolved_at"]) is None:
        raise _corrupt(where, "resolved_at", f"`{doc['resolved_at']}` is not a valid time")
    actual = description_digest(doc)  # last: the checks above name a broken field more exactly
    if doc[DIGEST_FIELD] != actual:
        reason = f"is `{doc[DIGEST_FIELD]}` but the content hashes to `{actual}`"
        raise _corrupt(where, DIGEST_FIELD, reason)
    return doc


def encode_description(doc: dict[str, Any]) -> bytes:
    """Validated, pretty, sorted-key JSON with a trailing newline: the bytes stored."""
    text = json.dumps(validate_description(doc), indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode()


def decode_description(data: bytes, where: str) -> dict[str, Any]:
    """Parse and validate stored bytes; `where` (a key or path) names them in errors."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise CorruptDescriptionError(
            f"failed to read description `{where}`: not UTF-8 at byte {err.start}", _READ_HINT
        ) from err
    except json.JSONDecodeError as err:
        raise CorruptDescriptionError(
            f"failed to read description `{where}`: invalid JSON at line {err.lineno} "
            f"column {err.colno}: {err.msg}",
            _READ_HINT,
        ) from err
    return validate_description(doc, where)


def packages_of(doc: dict[str, Any]) -> tuple[ResolvedPackage, ...]:
    """The packages of a validated description, as dataclasses."""
    return tuple(_package_from_json(p) for p in doc["packages"])


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`; microseconds only when there are any."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InternalError(f"failed to format time `{moment.isoformat()}`: it has no timezone")
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


def parse_timestamp(text: str) -> datetime | None:
    """The time of an RFC 3339 `…Z` string, or None; compare these, never the strings."""
    if not isinstance(text, str) or not _TIMESTAMP.match(text):
        return None
    try:
        return datetime.fromisoformat(text.removesuffix("Z") + "+00:00")
    except ValueError:
        return None


@cache
def _schema() -> dict[str, Any]:
    text = resources.files("envd.data").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema  # itself checked against the JSON Schema meta-schema in the unit tests


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_schema())


@cache
def _compiled() -> Callable[[Any], Any]:
    """fastjsonschema compiles the schema to Python: descriptions are validated on every read
    and write, and the interpreted validator dominated a cache hit (see bench/)."""
    compiled: Callable[[Any], Any] = fastjsonschema.compile(_schema())
    return compiled


def _fast_check(doc: Any) -> bool:
    try:
        _compiled()(doc)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def _package_json(p: ResolvedPackage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": p.kind,
        "name": p.name,
        "version": p.version,
        "url": p.url,
        "filename": p.filename,
        "sha256": p.sha256,
        "md5": p.md5,
        "size": p.size,
        "depends": list(p.depends),
        "constrains": list(p.constrains),
        "subdir": p.subdir,
        "formats": [
            {
                "format": f.format,
                "filename": f.filename,
                "sha256": f.sha256,
                "size": f.size,
                "transmuted_from": f.transmuted_from,
            }
            for f in p.formats
        ],
        "built": None
        if p.built is None
        else {
            "source": p.built.source,
            "sha256": p.built.sha256,
            "agent": p.built.agent,
            "platform": p.built.platform,
        },
    }
    if p.kind == "pypi":
        out["index"] = p.channel
    else:
        out["build"] = p.build
        out["channel"] = p.channel
        if p.build_number is not None:
            out["build_number"] = p.build_number
        if p.noarch is not None:
            out["noarch"] = p.noarch
    return out


def _package_from_json(p: dict[str, Any]) -> ResolvedPackage:
    built = p["built"]
    return ResolvedPackage(
        kind=p["kind"],
        name=p["name"],
        version=p["version"],
        build=p.get("build", ""),
        channel=p["index"] if p["kind"] == "pypi" else p["channel"],
        url=p["url"],
        filename=p["filename"],
        sha256=p["sha256"],
        md5=p.get("md5"),
        size=p["size"],
        subdir=p["subdir"],
        depends=tuple(p["depends"]),
        constrains=tuple(p["constrains"]),
        formats=tuple(PackageFormat(**f) for f in p["formats"]),
        built=None if built is None else BuildOrigin(**built),
        build_number=p.get("build_number"),
        noarch=p.get("noarch"),
    )


def _identities(packages: Iterable[dict[str, Any]]) -> list[PackageIdentity]:
    return [
        PackageIdentity(
            p["kind"],
            p["name"],
            p["version"],
            p.get("build", ""),
            p["filename"],
            p["sha256"] if p.get("built") is None else p["built"]["sha256"],
        )
        for p in packages
    ]


def _check_unique(packages: list[dict[str, Any]], where: str | None) -> None:
    seen: dict[tuple[str, str], int] = {}
    for index, p in enumerate(packages):
        first = seen.setdefault((p["kind"], p["name"]), index)
        if first != index:
            reason = f"`{p['name']}` repeats `packages[{first}]`"
            raise _corrupt(where, f"packages[{index}].name", reason)


def _explain(error: Any) -> tuple[str, str]:
    """The JSON path a schema error is about, and why, in words a user can act on."""
    parts: list[str | int] = list(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        required = error.validator_value if isinstance(error.validator_value, list) else []
        missing = [str(n) for n in required if n not in instance]
        named = [n for n in missing if error.message.startswith(repr(n))] or missing
        if named:
            return _json_path([*parts, named[0]]), "is missing"
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = sorted(name for name in instance if name not in known)
        if extra:
            return _json_path([*parts, extra[0]]), "is not a known field"
    if error.validator == "not" and error.validator_value == {}:  # forbidden for this kind
        return _json_path(parts), "is not allowed for this package `kind`"
    if error.validator == "pattern":
        return _json_path(parts), f"`{_short(instance)}` does not match `{error.validator_value}`"
    return _json_path(parts), _short(error.message)


def _json_path(parts: Sequence[str | int]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def _corrupt(where: str | None, path: str, reason: str) -> CorruptDescriptionError:
    place = f" `{where}`" if where else ""
    subject = f"`{path}`" if path else "the document"
    return CorruptDescriptionError(
        f"failed to validate description{place}: {subject} {reason}",
        _READ_HINT if where else "descriptions follow `envd/data/description-v1.schema.json`",
    )
