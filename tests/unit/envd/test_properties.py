"""Properties of ids, specs and descriptions, with Hypothesis (derandomized: see conftest)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envd.description import (
    ResolvedBy,
    ResolvedPackage,
    SolverInfo,
    build_description,
    decode_description,
    encode_description,
)
from envd.errors import EnvdError
from envd.ids import req_id
from envd.spec import RawDependency, RawSpec, canonical_json, normalize_spec, spec_from_canonical

NAMES = ["numpy", "scipy", "pandas", "zlib", "libblas", "python-dateutil"]
BOUNDS = [">=1.20", "<2", "=1.26", " >=1.0,<3", "", " 1.2.*", "==2.0"]
CHANNELS = ["conda-forge", "bioconda", "https://conda.example.com/private"]


@st.composite
def requests(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[str], str | None]:
    deps = draw(st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(BOUNDS)),
                         min_size=1, max_size=5, unique_by=lambda d: d[0]))  # fmt: skip
    channels = draw(st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=3, unique=True))
    python = draw(st.sampled_from([None, "3.11", "3.9.*", ">=3.10"]))
    return deps, channels, python


def rid(deps: list[str], channels: list[str], python: str | None) -> str:
    raw = RawSpec(conda=[RawDependency(d) for d in deps], channels=channels, python=python)
    return req_id(normalize_spec(raw))


def spelled(name: str, bound: str, variant: int) -> str:
    """The same dependency written differently: case, spaces around it and the bound."""
    text = name.upper() if variant % 3 == 1 else name
    tight = bound.strip()
    text += tight if variant % 2 and tight[:1] in "<>=!" else bound
    return ("  " if variant % 4 == 2 else "") + text + (" " if variant % 5 == 3 else "")


@given(requests(), st.randoms(use_true_random=False), st.integers(0, 59))
def test_req_id_ignores_order_spacing_duplicates_and_case(
    request: tuple[list[tuple[str, str]], list[str], str | None], rng: object, variant: int
) -> None:
    deps, channels, python = request
    plain = [n + b for n, b in deps]
    shuffled = list(deps)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    rewritten = [spelled(n, b, variant + i) for i, (n, b) in enumerate(shuffled)]
    rewritten.append(rewritten[0])  # a duplicate
    assert rid(rewritten, channels, python) == rid(plain, channels, python)


@given(requests(), st.sampled_from(["bound", "dep", "channel", "python"]))
def test_req_id_changes_with_any_change_that_matters(
    request: tuple[list[tuple[str, str]], list[str], str | None], change: str
) -> None:
    deps, channels, python = request
    plain = [n + b for n, b in deps]
    before = rid(plain, channels, python)
    if change == "bound":
        plain[0] = deps[0][0] + (">=99" if deps[0][1] != ">=99" else "<99")
    elif change == "dep":
        plain.append("an-extra-package")
    elif change == "channel":
        channels = [*channels, "https://another.example.com/c"]
    else:
        python = "3.7" if python != "3.7" else "3.8"
    assert rid(plain, channels, python) != before


@given(requests())
def test_spec_canonical_round_trip_is_the_identity(
    request: tuple[list[tuple[str, str]], list[str], str | None],
) -> None:
    deps, channels, python = request
    spec = normalize_spec(RawSpec(conda=[RawDependency(n + b) for n, b in deps],
                                  channels=channels, python=python))  # fmt: skip
    again = spec_from_canonical(json.loads(canonical_json(spec.to_canonical())))
    assert again == spec
    assert canonical_json(again.to_canonical()) == canonical_json(spec.to_canonical())
    assert normalize_spec(RawSpec(conda=[RawDependency(d.spec) for d in spec.conda],
                                  channels=list(spec.channels), python=spec.python)) == spec  # fmt: skip


def _description() -> bytes:
    packages = [
        ResolvedPackage(
            kind="conda",
            name=name,
            version="1.0",
            build="h0_0",
            channel="conda-forge",
            url=f"https://conda.anaconda.org/conda-forge/linux-64/{name}-1.0-h0_0.conda",
            filename=f"{name}-1.0-h0_0.conda",
            sha256=f"{i}" * 64,
            md5=None,
            size=10 + i,
            subdir="linux-64",
            depends=("libc >=2",),
        )
        for i, name in enumerate(["alpha", "beta", "gamma"])
    ]
    doc = build_description(
        req_id="a" * 40, platform="linux-64",
        spec=normalize_spec(RawSpec(conda=[RawDependency("alpha")], channels=["conda-forge"])),
        packages=packages, resolved_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        resolved_by=ResolvedBy(user="u", agent="a", host="h"),
        solver=SolverInfo(name="rattler", version="0.28"),
    )  # fmt: skip
    return encode_description(doc)


STORED = _description()


def test_a_written_description_reads_back_verified() -> None:
    assert encode_description(decode_description(STORED, "k")) == STORED


@given(st.integers(0, len(STORED) - 1), st.integers(1, 255))
def test_any_changed_byte_is_refused_or_changes_nothing_it_means(at: int, delta: int) -> None:
    """A flipped byte either breaks the document (refused) or lands in JSON whitespace that
    carries no meaning (the content read back is the same)."""
    changed = bytearray(STORED)
    changed[at] = (changed[at] + delta) % 256
    try:
        read = decode_description(bytes(changed), "k")
    except EnvdError:
        return
    assert read == decode_description(STORED, "k")
    assert chr(STORED[at]) in " \n\t\r"


@pytest.mark.parametrize("field", ["url", "md5", "depends", "size", "filename", "subdir"])
def test_no_package_field_can_be_edited(field: str) -> None:
    doc = json.loads(STORED)
    doc["packages"][1][field] = {"url": "https://evil.example.com/x.conda", "md5": "0" * 32,
                                 "depends": ["evil"], "size": 1, "filename": "x.conda",
                                 "subdir": "noarch"}[field]  # fmt: skip
    with pytest.raises(EnvdError):
        decode_description(json.dumps(doc).encode(), "k")
