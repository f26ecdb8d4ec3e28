"""envd's reading of real environment files agrees with conda-lock's, platform by platform."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from rattler import MatchSpec, VersionSpec

from envd.errors import InvalidSpecError
from envd.platforms import selector_matches
from envd.spec import EnvType, Spec
from envd.spec_input import load_spec

with warnings.catch_warnings():
    # conda-lock (a test-only reference) warns about its own deprecated imports on import.
    warnings.simplefilter("ignore")
    from conda_lock.models.lock_spec import (
        Dependency,
        LockSpecification,
        VCSDependency,
        VersionedDependency,
    )
    from conda_lock.src_parser.aggregation import aggregate_lock_specs
    from conda_lock.src_parser.environment_yaml import (
        parse_environment_file,
        parse_platforms_from_env_file,
    )
    from conda_lock.src_parser.markers import evaluate_marker

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "specs"
PLATFORMS = ["linux-64", "osx-64", "osx-arm64", "win-64", "linux-aarch64"]
ENV_FILES = sorted(
    str(p.relative_to(FIXTURES))
    for p in FIXTURES.rglob("*")
    if p.suffix in {".yml", ".yaml"} and p.is_file()
)

# Files envd refuses on purpose, with the reason and the message it must give instead: none
# now. Keep the table so a refusal is a decision written down, never a silent difference.
REJECTED: dict[str, str] = {}
# Files envd reads differently on purpose: per file, the rows only envd has and the rows only
# conda-lock has (on every platform compared), and why.
DIFFERENCES: dict[str, tuple[set[tuple[str, ...]], set[tuple[str, ...]], str]] = {
    "matplotlib/environment.yml": (
        {("conda", "joblib", "main", "", "", "")},
        set(),
        # conda-lock reads `# needed for sphinx-gallery[parallel]` as a selector and drops
        # joblib on every platform; envd reads a trailing `[…]` that is no platform word as
        # prose and keeps it (test_spec_files). `nbconvert[execute]!=6.0.0,…` is read alike:
        # the package with its constraints, envd warning that the extra is dropped.
        "a comment's `[parallel]` is prose, not a selector",
    ),
}
# Files with warnings envd gives while reading them as conda-lock does: the start of each.
WARNED = {
    "matplotlib/environment.yml": [
        "conda dependency `nbconvert[execute]!=6.0.0,!=6.0.1,!=7.3.0,!=7.3.1` at "
    ],
    "envd-tests/platform-typo.environment.yml": ["ignored unknown key `platform` at "],
}
# Files conda-lock itself cannot parse: none among these fixtures. Keep the table so a new
# fixture that conda-lock fails on is listed here with its reason, never skipped silently.
CONDA_LOCK_FAILS: dict[str, str] = {}

Row = tuple[str, str, str, str, str, str]  # manager, name, category, version, build, channel


@pytest.fixture(scope="module")
def mapping_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty local PyPI→conda name map: conda-lock then reads a file, never the network.

    (Only the conda `pip` dep it adds for a `pip:` section goes through the map.)
    """
    path = tmp_path_factory.mktemp("mapping") / "mapping.json"
    path.write_text(json.dumps({}))
    return str(path)


def _versions(text: str | None) -> str:
    """A version constraint as a sorted set of rattler-normalized `,` parts (`*` dropped)."""
    if text is None or text.strip() in {"", "*"}:
        return ""
    normalized = str(VersionSpec(text))
    if "|" in normalized:
        return normalized
    return ",".join(sorted(p for p in normalized.split(",") if p != "*"))


def _merge(rows: Iterable[Row]) -> set[Row]:
    """Fold repeated (manager, name, category, build, channel) rows, as both tools solve them."""
    merged: dict[tuple[str, str, str, str, str], set[str]] = {}
    for manager, name, category, version, build, channel in rows:
        parts = merged.setdefault((manager, name, category, build, channel), set())
        parts.update(version.split(",") if version else ())
    return {(m, n, c, ",".join(sorted(v)), b, ch) for (m, n, c, b, ch), v in merged.items()}


def _conda_row(spec: str, category: str) -> Row:
    match = MatchSpec(spec)
    assert match.name is not None
    version = str(match.version) if match.version is not None else None
    channel = (match.channel.name or "") if match.channel is not None else ""
    return (
        "conda",
        match.name.normalized,
        category,
        _versions(version),
        match.build or "",
        channel,
    )


def _pypi_row(requirement: str, category: str) -> Row:
    req = Requirement(requirement)
    # conda-lock renders `===` as `==` (it keeps a conda-style version); compare likewise.
    specifier = str(SpecifierSet(str(req.specifier).replace("===", "==")))
    kind = "url" if req.url else "version"
    return ("pip", req.name, category, ",".join(sorted(specifier.split(","))), kind, "")


def envd_rows(spec: Spec, platform: str) -> set[Row]:
    conda = [(d.spec, d.category) for d in spec.conda if selector_matches(d.selector, platform)]
    if spec.python is not None and spec.env_type is not EnvType.PYPI_ONLY:
        conda.append((f"python {spec.python}", "main"))
    # These are exactly the MatchSpecs envd hands the solver for this platform.
    assert sorted(s for s, _ in conda) == spec.conda_specs_for(platform)
    rows = [_conda_row(s, category) for s, category in conda]
    for dep in spec.pypi:
        if not selector_matches(dep.selector, platform):
            continue
        marker = Requirement(dep.requirement).marker
        # envd keeps markers for the resolver; conda-lock drops deps whose platform marker
        # fails. Evaluate them the way conda-lock does to compare the same thing.
        if marker is not None and not _quiet_evaluate(str(marker), platform):
            continue
        rows.append(_pypi_row(dep.requirement, dep.category))
    return _merge(rows)


def _quiet_evaluate(marker: str, platform: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(evaluate_marker(marker, platform))


def conda_lock_rows(deps: list[Dependency]) -> set[Row]:
    rows: list[Row] = []
    for dep in deps:
        if dep.manager == "conda":
            assert isinstance(dep, VersionedDependency)
            rows.append(
                (
                    "conda",
                    MatchSpec(dep.name).name.normalized,
                    dep.category,
                    _versions(dep.version),
                    dep.build or "",
                    dep.conda_channel or "",
                )
            )
            continue
        if isinstance(dep, VersionedDependency):
            version = "" if dep.version in {"", "*"} else str(SpecifierSet(dep.version))
            kind = "version"
        else:
            version, kind = "", "url"
            assert isinstance(dep, VCSDependency) or hasattr(dep, "url")
        rows.append(("pip", dep.name, dep.category, ",".join(sorted(version.split(","))), kind, ""))
    return _merge(rows)


def _conda_lock_spec(path: Path, mapping_url: str) -> LockSpecification:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return parse_environment_file(path, PLATFORMS, mapping_url=mapping_url)


def test_every_fixture_is_classified() -> None:
    assert ENV_FILES, FIXTURES
    for name in [*REJECTED, *CONDA_LOCK_FAILS, *DIFFERENCES, *WARNED]:
        assert name in ENV_FILES


@pytest.mark.parametrize("name", ENV_FILES)
def test_same_dependencies_per_platform(name: str, mapping_url: str) -> None:
    path = FIXTURES / name
    if name in CONDA_LOCK_FAILS:
        with pytest.raises(Exception):  # noqa: B017 - whatever conda-lock raises
            _conda_lock_spec(path, mapping_url)
        return
    reference = _conda_lock_spec(path, mapping_url)
    if name in REJECTED:
        with pytest.raises(InvalidSpecError, match=REJECTED[name]):
            load_spec(env_files=[path])
        return
    loaded = load_spec(env_files=[path])
    warned = WARNED.get(name, [])
    # (editable pip entries are skipped with a warning, as conda-lock skips them)
    warnings = [w for w in loaded.warnings if not w.startswith("skipped editable pip entry")]
    assert len(warnings) == len(warned), warnings
    for warning, start in zip(warnings, warned, strict=True):
        assert warning.startswith(start)
    assert list(loaded.platforms) == parse_platforms_from_env_file(path)
    assert list(loaded.spec.channels) == [c.url for c in reference.channels]
    envd_only, lock_only, _ = DIFFERENCES.get(name, (set(), set(), ""))
    compared = 0
    for platform in PLATFORMS:
        expected = conda_lock_rows(reference.dependencies[platform])
        found = envd_rows(loaded.spec, platform)
        assert (found - expected, expected - found) == (envd_only, lock_only), platform
        compared += len(expected)
    assert compared > 0  # every fixture names dependencies: an empty match proves nothing


@pytest.mark.parametrize(
    "names",
    [
        [
            "locks/conda-lock/conda-lock-tests/test-multiple-categories/main.yml",
            "locks/conda-lock/conda-lock-tests/test-multiple-categories/dev.yml",
            "locks/conda-lock/conda-lock-tests/test-multiple-categories/test.yml",
        ],
        [
            "conda-lock-tests/test-multi-sources/main.yml",
            "conda-lock-tests/test-multi-sources/dev.yml",
        ],
    ],
)
def test_several_files_aggregate_like_conda_lock(names: list[str], mapping_url: str) -> None:
    paths = [FIXTURES / n for n in names]
    specs = [_conda_lock_spec(p, mapping_url) for p in paths]
    reference = aggregate_lock_specs(specs, PLATFORMS)
    loaded = load_spec(env_files=paths)
    for platform in PLATFORMS:
        expected = conda_lock_rows(reference.dependencies[platform])
        assert envd_rows(loaded.spec, platform) == expected, platform
