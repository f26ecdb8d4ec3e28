"""Pinned `environment.yml` and `requirements.txt` from an environment's description: what conda
and pip read, for users who install without envd."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envd.errors import LockExportError
from envd.requirements_txt import DEFAULT_INDEX_URL

from .lock_export import dump_yaml, locked_artifact

EXPORT_FORMATS = ("environment.yml", "requirements.txt")

Descriptions = Mapping[str, Mapping[str, Any]]


def render_export(descriptions: Descriptions, fmt: str, platform: str | None) -> bytes:
    """The file of `fmt` for the environment on `platform` (or on its only platform, or on all
    of them when they export to the same bytes)."""
    if fmt not in EXPORT_FORMATS:
        raise LockExportError(
            f"failed to export: unknown format `{fmt}`",
            hint="use one of " + ", ".join(f"`{f}`" for f in EXPORT_FORMATS),
        )
    render = environment_yml if fmt == "environment.yml" else requirements_txt
    if platform is not None:
        if platform not in descriptions:
            raise LockExportError(
                f"failed to export {fmt}: the environment has no platform `{platform}`",
                hint="it has: " + ", ".join(f"`{p}`" for p in sorted(descriptions)),
            )
        return render(descriptions[platform], platform)
    platforms = sorted(descriptions)
    # the header names the platform(s); the pins below it decide
    rendered = {p: render(descriptions[p], "*") for p in platforms}
    if len(set(rendered.values())) > 1:
        raise LockExportError(
            f"failed to export {fmt}: the environment's {len(rendered)} platforms pin different "
            "packages (" + ", ".join(f"`{p}`" for p in rendered) + ")",
            hint="choose one with `--platform PLATFORM`",
        )
    return render(descriptions[platforms[0]], ", ".join(platforms))


def _header(description: Mapping[str, Any], platforms: str) -> str:
    return (
        f"# exported by envd from {description['req_id']}:{description['full_id']} for {platforms}"
    )


def environment_yml(description: Mapping[str, Any], platforms: str) -> bytes:
    """Channels, conda pins `name=version=build`, and a `pip:` list `name==version` (with the
    spec's PyPI indexes as `--index-url`/`--extra-index-url` when they are not PyPI's)."""
    packages = description["packages"]
    if description.get("env_type") == "pypi-only":
        python = description["spec"].get("python") or "its python"
        raise LockExportError(
            f"failed to export environment.yml for `{description['platform']}`: the environment "
            "is pypi-only, and conda installs a `pip:` list only into a python from a channel",
            hint=f"export `--format requirements.txt` and install it into a virtualenv of python "
            f"{python} (`uv venv`, then `uv pip install -r requirements.txt`)",
        )
    dependencies: list[Any] = [
        f"{p['name']}={p['version']}={p['build']}" for p in packages if p["kind"] == "conda"
    ]
    pip = [f"{p['name']}=={p['version']}" for p in packages if p["kind"] == "pypi"]
    if pip:
        dependencies.append({"pip": _index_options(description) + pip})
    document = {
        "channels": [*description["spec"]["channels"], "nodefaults"],
        "dependencies": dependencies,
    }
    return (_header(description, platforms) + "\n" + dump_yaml(document)).encode()


def requirements_txt(description: Mapping[str, Any], platforms: str) -> bytes:
    """The PyPI packages pinned `name==version` with `--hash=sha256:` (pip's hash-checking
    mode; a wheel envd built is pinned by its source's hash, which pip fetches and builds); a
    mixed environment's conda packages are named in a comment, not installed."""
    platform = description["platform"]
    pypi = [p for p in description["packages"] if p["kind"] == "pypi"]
    conda = [p["name"] for p in description["packages"] if p["kind"] == "conda"]
    if not pypi:
        raise LockExportError(
            f"failed to export requirements.txt for `{platform}`: the environment has no PyPI "
            f"packages (its {len(conda)} packages are conda packages)",
            hint="export `--format environment.yml`, or `envd-client lock --format explicit`",
        )
    lines = [_header(description, platforms)]
    if conda:
        lines.append(f"# not installable by pip, so not listed: {len(conda)} conda packages "
                     f"({', '.join(conda)})")  # fmt: skip
    lines += _index_options(description)
    for p in pypi:
        lines += [f"{p['name']}=={p['version']} \\", f"    --hash=sha256:{locked_artifact(p)[1]}"]
    return ("\n".join(lines) + "\n").encode()


def _index_options(description: Mapping[str, Any]) -> list[str]:
    indexes = [i for i in description["spec"].get("pypi_indexes", [])]
    links = [f"--find-links {u}" for u in description["spec"].get("pypi_find_links", [])]
    if not indexes or indexes == [DEFAULT_INDEX_URL]:
        return links
    return [f"--index-url {indexes[0]}", *(f"--extra-index-url {i}" for i in indexes[1:]), *links]
