"""Spec normalisation at its edges: how conda dependencies of one name fold (or don't), which
`python` deps fold into the python constraint, channel spellings, credential refusals that name
the host and nothing secret, and the canonical bytes of docs/ids.md. Mutation testing (`make
mutation`) found these unchecked; each is a spelling that must give one req_id, or a request
that must keep every dependency."""

from __future__ import annotations

import pytest

from envd.errors import InvalidSpecError
from envd.spec import (
    CondaDependency,
    RawDependency,
    RawSpec,
    canonical_json,
    normalize_channel,
    normalize_spec,
)


def conda(*texts: str, **fields: str) -> list[str]:
    """The normalized conda specs of these dependencies (one RawDependency each)."""
    raw = RawSpec(conda=[RawDependency(t, **fields) for t in texts])  # type: ignore[arg-type]
    return [d.spec for d in normalize_spec(raw).conda]


def test_plain_constraints_of_one_name_fold_into_one_sorted_spec() -> None:
    assert conda("numpy>=1", "numpy<2") == ["numpy <2,>=1"]
    assert conda("numpy<2", "numpy >=1") == ["numpy <2,>=1"]
    assert conda("numpy", "numpy>=1") == ["numpy >=1"]
    assert conda("numpy", "numpy") == ["numpy"]
    # `*` is no constraint: `numpy *` is `numpy`, alone or beside another constraint
    assert conda("numpy *") == ["numpy"]
    assert conda("numpy *", "numpy>=1") == ["numpy >=1"]


def test_what_is_not_a_plain_version_stays_its_own_dependency() -> None:
    """A build string, a channel, brackets or alternatives (`|`) are not folded: a fold would
    change what they mean."""
    assert conda("numpy 1.26 py311*", "numpy<2") == ["numpy <2", "numpy ==1.26 py311*"]
    assert conda("conda-forge::numpy", "numpy<2") == ["conda-forge::numpy", "numpy <2"]
    assert conda("blas[build=openblas]", "blas>=1") == ["blas >=1", 'blas[build="openblas"]']
    assert conda("numpy 1.*|2.*", "numpy>=1.5") == ["numpy 1.*|2.*", "numpy >=1.5"]


def test_every_dependency_after_one_that_does_not_fold_is_kept() -> None:
    assert conda("blas[build=openblas]", "zlib", "numpy") == ['blas[build="openblas"]', "numpy",
                                                               "zlib"]  # fmt: skip
    assert conda("python 3.11", "numpy", "zlib") == ["numpy", "zlib"]


def test_one_name_with_and_without_a_selector_stays_two_dependencies() -> None:
    spec = normalize_spec(RawSpec(conda=[RawDependency("numpy", selector="linux"),
                                         RawDependency("numpy >=1")]))  # fmt: skip
    assert spec.conda == (CondaDependency("numpy", "numpy >=1"),
                          CondaDependency("numpy", "numpy", selector="linux"))  # fmt: skip


@pytest.mark.parametrize(
    "text",
    ["python 3.11 *_cpython", "conda-forge::python 3.11", "python 3.11[build_number=1]"],
)
def test_a_python_dep_with_a_build_channel_or_build_number_is_not_folded(text: str) -> None:
    spec = normalize_spec(RawSpec(conda=[RawDependency(text)]))
    assert spec.python is None
    assert [d.name for d in spec.conda] == ["python"]


def test_a_plain_python_dep_folds_into_the_python_constraint() -> None:
    spec = normalize_spec(RawSpec(conda=[RawDependency("python 3.11"), RawDependency("zlib")]))
    assert spec.python == "==3.11" and [d.name for d in spec.conda] == ["zlib"]
    assert normalize_spec(RawSpec(conda=[RawDependency("python")])).python == "*"


def test_channel_names_and_urls_lose_a_trailing_slash() -> None:
    assert normalize_channel("conda-forge/") == "conda-forge"
    assert normalize_channel(" conda-forge ") == "conda-forge"
    assert normalize_channel("https://conda.example.com/forge/") == (
        "https://conda.example.com/forge"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user@conda.example.com/private", "https://conda.example.com/…"),
        ("https://:secret@conda.example.com/private", "https://conda.example.com/…"),
        ("https://user:secret@conda.example.com", "https://conda.example.com"),
        ("https://conda.example.com/t/tk-123abc/private", "https://conda.example.com/…"),
    ],
)
def test_any_credential_in_a_channel_url_is_refused_naming_only_the_host(
    url: str, shown: str
) -> None:
    with pytest.raises(InvalidSpecError) as info:
        normalize_channel(url)
    assert info.value.message == (
        f"channel URL `{shown}` carries credentials; they would be written into ids, "
        "descriptions and logs"
    )


def test_a_channel_url_that_does_not_parse_names_its_scheme_only() -> None:
    with pytest.raises(InvalidSpecError) as info:
        normalize_channel("https://user:secret@[conda.example.com/private")
    assert info.value.message == ("channel URL `https://…` is not a valid URL: Invalid IPv6 URL")


def test_virtual_package_names_need_a_name_after_the_underscores() -> None:
    with pytest.raises(InvalidSpecError, match="is not a virtual package name"):
        normalize_spec(RawSpec(virtual_packages={"__": "1"}))
    spec = normalize_spec(RawSpec(virtual_packages={"__a": "1", " __CUDA ": " 12.0 "}))
    assert spec.virtual_packages == (("__a", "1"), ("__cuda", "12.0"))


def test_canonical_bytes_keep_non_ascii_text_as_utf8() -> None:
    """docs/ids.md: non-ASCII characters are written as themselves, then UTF-8 encoded."""
    assert canonical_json({"b": "é", "a": [1]}) == '{"a":[1],"b":"é"}'.encode()


def test_python_constraints_merge_without_repeating_themselves() -> None:
    """The same constraint twice is that constraint; `*` (a bare `python`) adds nothing."""
    twice = normalize_spec(RawSpec(python="3.11", conda=[RawDependency("python 3.11.*")]))
    assert twice.python == "3.11.*"
    bare_first = RawSpec(conda=[RawDependency("python"), RawDependency("python 3.11")])
    assert normalize_spec(bare_first).python == "==3.11"
    bare_last = RawSpec(conda=[RawDependency("python 3.11"), RawDependency("python")])
    assert normalize_spec(bare_last).python == "==3.11"
    both = RawSpec(python=">=3.9", conda=[RawDependency("python <3.12")])
    assert normalize_spec(both).python == ">=3.9,<3.12"


def test_only_a_bare_version_is_widened_to_its_series() -> None:
    """`3.11` means `3.11.*`; a constraint with an operator or a pre-release is kept as it is."""
    assert normalize_spec(RawSpec(python="3.11")).python == "3.11.*"
    assert normalize_spec(RawSpec(python="!=3.9")).python == "!=3.9"
    assert normalize_spec(RawSpec(python="3.13.0rc1")).python == "==3.13.0rc1"
