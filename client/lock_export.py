"""Lock files out of envd: `conda-lock.yml`, `@EXPLICIT` files and `pixi.lock`, rendered from
an environment's descriptions (one per platform) as the tools that read them write them."""

from __future__ import annotations

import graphlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from envd.errors import LockExportError
from envd.locks import index_of

FORMATS = ("conda-lock", "explicit", "pixi")
DEFAULT_PATHS = {"conda-lock": "conda-lock.yml", "explicit": "conda-{platform}.lock",
                 "pixi": "pixi.lock"}  # fmt: skip
PLATFORM_FIELD = "{platform}"
PIXI_ENVIRONMENT = "default"
YAML_WIDTH = 1 << 20  # never fold a long requirement or URL over lines
_BUILD_NUMBER = re.compile(r"^[0-9]+$")
_PIP_SPECIFIER = re.compile(r"^\s*[A-Za-z0-9._-]+\s*(?:\[[^\]]*\])?\s*(.*)$")  # name[extras] spec

Descriptions = Mapping[str, Mapping[str, Any]]


def render_lock(
    descriptions: Descriptions, fmt: str, *, req_id: str, alias: str | None
) -> dict[str, bytes]:
    """The file(s) of `fmt` for these descriptions (platform → description): platform → bytes
    for `explicit`, `""` → bytes for the one multi-platform `conda-lock` or `pixi` file."""
    if not descriptions:
        raise LockExportError("failed to export a lock file: no environment to export")
    if fmt == "conda-lock":
        return {"": conda_lock_bytes(descriptions, req_id=req_id, alias=alias)}
    if fmt == "pixi":
        return {"": pixi_lock_bytes(descriptions)}
    if fmt == "explicit":
        return {platform: explicit_bytes(d) for platform, d in sorted(descriptions.items())}
    raise LockExportError(
        f"failed to export a lock file: unknown format `{fmt}`",
        hint="use one of " + ", ".join(f"`{f}`" for f in FORMATS),
    )


def write_lock(
    descriptions: Descriptions, fmt: str, path: str | Path | None, *, req_id: str,
    alias: str | None,
) -> list[Path]:  # fmt: skip
    """Render and write: one file at `path`, or for `explicit` one per platform at `path`
    with `{platform}` replaced (needed when there are several). The paths written."""
    pattern = str(path) if path is not None else DEFAULT_PATHS.get(fmt, "")
    files = render_lock(descriptions, fmt, req_id=req_id, alias=alias)
    if fmt == "explicit" and len(files) > 1 and PLATFORM_FIELD not in pattern:
        raise LockExportError(
            f"failed to export `@EXPLICIT` files to `{pattern}`: the environment has "
            f"{len(files)} platforms ({', '.join(f'`{p}`' for p in files)}) and the path "
            f"has no `{PLATFORM_FIELD}`",
            hint=f"give a pattern such as `-o conda-{PLATFORM_FIELD}.lock`, or one `--arch`",
        )
    written = []
    for platform, data in files.items():
        target = Path(pattern.replace(PLATFORM_FIELD, platform) if platform else pattern)
        write_file(target, data)
        written.append(target)
    return written


def conda_lock_bytes(descriptions: Descriptions, *, req_id: str, alias: str | None) -> bytes:
    """conda-lock's `version: 1` file: every platform, conda packages with md5 and sha256,
    pip packages with sha256, dependencies as `name: version-spec`."""
    platforms = sorted(descriptions)
    first = descriptions[platforms[0]]
    custom = {"envd_req_id": req_id}
    if alias:
        custom["envd_alias"] = alias
    for platform in platforms:
        custom[f"envd_full_id.{platform}"] = str(descriptions[platform]["full_id"])
    packages = [
        _conda_lock_package(p, platform)
        for platform in platforms
        for p in descriptions[platform]["packages"]
    ]
    document = {
        "version": 1,
        "metadata": {
            "content_hash": {p: content_hash(descriptions[p]) for p in platforms},
            "channels": [{"url": c, "used_env_vars": []} for c in first["spec"]["channels"]],
            "platforms": platforms,
            "sources": [f"envd:{req_id}"],
            "custom_metadata": custom,
        },
        "package": packages,
    }
    header = f"# conda-lock.yml exported by envd from req_id {req_id}\n"
    return (header + dump_yaml(document)).encode()


def content_hash(description: Mapping[str, Any]) -> str:
    """conda-lock's per-platform input hash, from what envd solved: the spec and platform (the
    same inputs give the same hash; conda-lock re-solves any file whose hash it can't match)."""
    content = {"spec": description["spec"], "platform": description["platform"]}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def locked_artifact(p: Mapping[str, Any]) -> tuple[str, str]:
    """The (url, sha256) a lock file pins for a package: its archive's, except for a wheel envd
    built, which no index serves: its source's (`built.source`, `built.sha256`, the pair an
    installer can fetch and verify, then build; the same hash full_id counts)."""
    built = p.get("built")
    if built:
        return str(built["source"]), str(built["sha256"])
    return str(p["url"]), str(p["sha256"])


def _conda_lock_package(p: Mapping[str, Any], platform: str) -> dict[str, Any]:
    if p["kind"] == "conda":
        if not p.get("md5"):
            raise LockExportError(
                f"failed to export conda-lock.yml: conda package `{p['name']}` on `{platform}` "
                "has no md5, which conda-lock requires",
                hint="export `--format pixi` or `explicit`, which need only the sha256",
            )
        hashes = {"md5": p["md5"], "sha256": p["sha256"]}
        return {
            "name": p["name"], "version": p["version"], "manager": "conda",
            "platform": platform, "dependencies": _conda_dependencies(p["depends"]),
            "url": p["url"], "hash": hashes, "category": "main", "optional": False,
        }  # fmt: skip
    url, sha256 = locked_artifact(p)
    return {
        "name": p["name"], "version": p["version"], "manager": "pip", "platform": platform,
        "dependencies": _pip_dependencies(p["depends"]), "url": url,
        "hash": {"sha256": sha256}, "category": "main", "optional": False,
    }  # fmt: skip


def _conda_dependencies(depends: Iterable[str]) -> dict[str, str]:
    """`name version [build]` → {name: version} as conda-lock writes them ("" for any)."""
    out: dict[str, str] = {}
    for dep in depends:
        name, _, rest = dep.strip().partition(" ")
        version = rest.strip().split(" ")[0] if rest.strip() else ""
        out[name] = ",".join(v for v in (out.get(name, ""), version) if v)
    return out


def _pip_dependencies(depends: Iterable[str]) -> dict[str, str]:
    from packaging.requirements import Requirement

    out = {}
    for dep in depends:
        requirement = Requirement(dep)  # checks it; the specifier is kept as written, since
        # `str(SpecifierSet)` sorts it and a lock read back must say what the original said
        found = _PIP_SPECIFIER.match(dep.split(";", 1)[0])
        written = found.group(1).strip().strip("()").strip() if found else ""
        written = "" if written.startswith("@") else written  # a direct URL: no version spec
        out[requirement.name] = written or str(requirement.specifier) or "*"
    return out


def explicit_bytes(description: Mapping[str, Any]) -> bytes:
    """An `@EXPLICIT` file as `conda list --explicit --sha256` writes it: each archive's url
    with `#sha256:<hex>` (or `#<md5>` when a package has no sha256), dependencies first."""
    platform = description["platform"]
    pypi = [p["name"] for p in description["packages"] if p["kind"] == "pypi"]
    if pypi:
        raise LockExportError(
            f"failed to export an `@EXPLICIT` file for `{platform}`: it holds only conda "
            f"packages and the environment has {len(pypi)} PyPI package(s): "
            + ", ".join(f"`{n}`" for n in pypi),
            hint="export `--format conda-lock` or `pixi`, which carry PyPI packages too",
        )
    lines = [
        "# This file may be used to create an environment using:",
        "# $ conda create --name <env> --file <this file>",
        f"# platform: {platform}",
        f"# envd: {description['req_id']}:{description['full_id']}",
        "@EXPLICIT",
    ]
    for p in install_order(description["packages"]):
        lines.append(
            f"{p['url']}#sha256:{p['sha256']}" if p["sha256"] else f"{p['url']}#{p['md5']}"
        )
    return ("\n".join(lines) + "\n").encode()


def install_order(packages: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Packages with each one's dependencies before it (as conda lists an environment), ties
    by name; the name order if the dependencies form a cycle."""
    by_name = {p["name"]: p for p in sorted(packages, key=lambda p: p["name"])}
    graph = {
        name: sorted({d.split(" ")[0] for d in p["depends"]} & by_name.keys() - {name})
        for name, p in by_name.items()
    }
    try:
        return [by_name[name] for name in graphlib.TopologicalSorter(graph).static_order()]
    except graphlib.CycleError:
        return list(by_name.values())


def pixi_lock_bytes(descriptions: Descriptions) -> bytes:
    """A `pixi.lock` written by py-rattler's `LockFile` (one environment, `default`), then given
    what `add_pypi_package` leaves out: each PyPI package's `sha256` and `requires_dist`, keys
    the format has and py-rattler reads back. A wheel envd built is pinned by its source
    (`locked_artifact`)."""
    import rattler

    platforms = {name: rattler.LockPlatform(name) for name in sorted(descriptions)}
    lock = rattler.LockFile(list(platforms.values()))
    first = descriptions[next(iter(platforms))]
    lock.set_channels(PIXI_ENVIRONMENT, [rattler.LockChannel(c) for c in first["spec"]["channels"]])
    pypi: dict[str, Mapping[str, Any]] = {}
    for name, platform in platforms.items():
        for p in descriptions[name]["packages"]:
            if p["kind"] == "conda":
                lock.add_conda_package(PIXI_ENVIRONMENT, platform, _repodata_record(p))
            else:
                url, _ = locked_artifact(p)
                lock.add_pypi_package(PIXI_ENVIRONMENT, platform, p["name"], p["version"], url)
                pypi[url] = p
    with tempfile.TemporaryDirectory(prefix="envd-pixi-") as scratch:
        path = Path(scratch) / "pixi.lock"
        lock.to_path(path)
        document = yaml.safe_load(path.read_text("utf-8"))
    for entry in document.get("packages", []):
        p = pypi.get(entry.get("pypi", ""))
        if p is not None:
            entry["sha256"] = locked_artifact(p)[1]
            if p["depends"]:  # as pixi writes it: no key for none
                entry["requires_dist"] = list(p["depends"])
    if pypi:
        _pixi_indexes(document["environments"][PIXI_ENVIRONMENT], first["spec"], pypi.values())
    return dump_yaml(document).encode()


def _pixi_indexes(
    environment: dict[str, Any], spec: Mapping[str, Any], pypi: Iterable[Mapping[str, Any]]
) -> None:
    """The spec's PyPI indexes and find-links pages, where pixi writes them (after `channels`:
    `indexes: [URL…]`, `find-links: [{url: URL}…]`), which py-rattler's `add_pypi_package`
    leaves out. A solve without indexes used PyPI's; an imported lock's spec names none, so its
    packages' recorded indexes are written, and no `indexes:` when none is (`lock_indexes`)."""
    from envd.requirements_txt import DEFAULT_INDEX_URL

    fields: dict[str, Any] = {}
    if spec.get("pypi_indexes"):
        fields["indexes"] = list(spec["pypi_indexes"])
    elif spec.get("locked"):
        if indexes := lock_indexes(pypi):
            fields["indexes"] = indexes
    else:
        fields["indexes"] = [DEFAULT_INDEX_URL]
    if spec.get("pypi_find_links"):
        fields["find-links"] = [{"url": u} for u in spec["pypi_find_links"]]
    rest = dict(environment)
    environment.clear()
    environment.update({"channels": rest.pop("channels", []), **fields, **rest})


def lock_indexes(pypi: Iterable[Mapping[str, Any]]) -> list[str]:
    """The indexes an imported lock's PyPI packages record (their `channel`), in first-seen
    order. A lock that records none leaves each one the origin of its file's URL
    (`envd.locks.index_of`), a file host and not an index: not written, not invented."""
    found: dict[str, None] = {}
    for p in pypi:
        channel = str(p.get("channel") or "")
        if channel and channel != index_of(str(p["url"])):
            found.setdefault(channel, None)
    return list(found)


def dump_yaml(document: Any) -> str:
    """Block-style YAML in the document's key order, long lines never folded."""
    return str(yaml.safe_dump(document, sort_keys=False, width=YAML_WIDTH, allow_unicode=True))


def _repodata_record(p: Mapping[str, Any]) -> Any:
    import rattler

    record = rattler.PackageRecord(
        p["name"], p["version"], rattler.BuildString(p["build"]), build_number(p),
        p["subdir"], noarch=noarch_kind(p), depends=list(p["depends"]),
        constrains=list(p["constrains"]),
        sha256=bytes.fromhex(p["sha256"]) if p["sha256"] else None,
        md5=bytes.fromhex(p["md5"]) if p.get("md5") else None, size=p["size"],
    )  # fmt: skip
    return rattler.RepoDataRecord(record, p["filename"], p["url"], p["channel"])


def build_number(p: Mapping[str, Any]) -> int:
    """The description's `build_number` (a solve's record, a pixi.lock); for one without
    (written before envd kept it, or imported from a conda-lock or `@EXPLICIT` file, which
    record none) the build string's: builds end in `_<number>` (or hold it as the last all-digit
    part, `h0755675_0_cpython`); 0 when none does."""
    if p.get("build_number") is not None:
        return int(p["build_number"])
    digits = [part for part in str(p["build"]).split("_") if _BUILD_NUMBER.match(part)]
    return int(digits[-1]) if digits else 0


def noarch_kind(p: Mapping[str, Any]) -> Literal["generic", "python"] | None:
    """The description's `noarch`; for a `noarch`-subdir package without one (a conda-lock or
    `@EXPLICIT` import, an older description) `python` when it depends on `python`, else
    `generic`: right for most, not for a noarch: python metapackage that depends on another
    package only (`typing-extensions` → `typing_extensions`)."""
    if p.get("noarch") in ("generic", "python"):
        return "python" if p["noarch"] == "python" else "generic"
    if p["subdir"] != "noarch":
        return None
    names = {dep.strip().split(" ")[0] for dep in p["depends"]}
    return "python" if "python" in names else "generic"


def write_file(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
