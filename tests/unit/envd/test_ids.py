"""req_id and full_id: the documented golden vectors, the seed examples, same/different pairs."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from envd.ids import ID_LENGTH, PackageIdentity, full_id, is_id, req_id
from envd.spec_input import load_spec

DOC = Path(__file__).resolve().parents[3] / "docs" / "ids.md"
_FENCE = re.compile(r"^```(\w+)\n(.*?)\n```$", re.MULTILINE | re.DOTALL)


def golden_blocks(section: str, vector: str = "Golden vector") -> list[str]:
    """The fenced blocks under `### <vector>` of the `## <section>` part of docs/ids.md."""
    text = DOC.read_text(encoding="utf-8")
    parts = {p.split("\n", 1)[0].strip(): p for p in text.split("\n## ")[1:]}
    vectors = {v.split("\n", 1)[0].strip(): v for v in parts[section].split("\n### ")[1:]}
    return [m.group(2) for m in _FENCE.finditer(vectors[vector])]


@pytest.mark.parametrize("vector", ["Golden vector", "Golden vector: python alternatives"])
def test_req_id_golden_vector(vector: str) -> None:
    request, canonical, expected = golden_blocks("req_id", vector)
    spec = load_spec(**json.loads(request)).spec
    assert spec.canonical_bytes() == canonical.encode("utf-8")
    assert req_id(spec) == expected
    assert hashlib.sha256(canonical.encode()).hexdigest()[:40] == expected


def test_canonical_bytes_are_sorted_compact_json_without_newline() -> None:
    _, canonical, _ = golden_blocks("req_id")
    value = json.loads(canonical)
    again = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert again == canonical
    assert not canonical.endswith("\n")
    assert value["format"] == "envd-spec-v1"


def test_full_id_golden_vector() -> None:
    identities, hashed, expected = golden_blocks("full_id")
    packages = [PackageIdentity(**fields) for fields in json.loads(identities)]
    lines = "".join(sorted(f"{p.line()}\n" for p in packages))
    assert lines == json.loads(hashed)
    assert full_id(packages) == expected
    assert hashlib.sha256(lines.encode()).hexdigest()[:40] == expected


def test_full_id_ignores_package_order() -> None:
    identities, _, expected = golden_blocks("full_id")
    packages = [PackageIdentity(**fields) for fields in json.loads(identities)]
    assert full_id(reversed(packages)) == full_id(packages) == expected


def test_full_id_changes_with_any_field() -> None:
    identities, _, expected = golden_blocks("full_id")
    fields = json.loads(identities)
    for key in ("kind", "name", "version", "build", "filename", "sha256"):
        changed = [dict(fields[0], **{key: fields[0][key] + "x"}), fields[1]]
        assert full_id(PackageIdentity(**f) for f in changed) != expected, key


def test_ids_are_40_lowercase_hex() -> None:
    spec = load_spec(packages=["numpy"]).spec
    assert ID_LENGTH == 40
    assert is_id(req_id(spec))
    assert not is_id(req_id(spec).upper())
    assert not is_id(req_id(spec)[:39])


def test_seed_example() -> None:
    first = load_spec(packages=["pandas>=1.0"], python="3.8").spec
    second = load_spec(packages=["pandas>=1.0"], python="3.8").spec
    newer = load_spec(packages=["pandas>=1.1"], python="3.8").spec
    assert req_id(first) == req_id(second)
    assert req_id(first) != req_id(newer)


# -- pairs ---------------------------------------------------------------------------------
# A request is load_spec's keyword arguments plus optional `env` (environment.yml text) and
# `req` (requirements.txt text), written to files first.

Request = dict[str, Any]

SAME: list[tuple[str, Request, Request]] = [
    ("spaces in a conda spec", {"packages": ["pandas>=1.0"]}, {"packages": ["pandas >=1.0"]}),
    ("python=X is X.*", {"packages": ["python=3.9"]}, {"packages": ["python 3.9.*"]}),
    ("--python vs -p python", {"python": "3.9"}, {"packages": ["python=3.9"]}),
    (
        "--python alternatives of bare versions are series",
        {"python": "3.9|3.10"},
        {"python": "3.9.* | 3.10.*"},
    ),
    (
        "dependency order",
        {"packages": ["numpy", "pandas>=1"], "pypi": ["rich", "attrs"]},
        {"packages": ["pandas>=1", "numpy"], "pypi": ["attrs", "rich"]},
    ),
    ("conda name case", {"packages": ["NumPy>=1.20"]}, {"packages": ["numpy>=1.20"]}),
    (
        "comments, blank lines and whitespace in environment.yml",
        {
            "env": "# dev env\nname: x\n\nchannels:\n    - conda-forge   # main\n"
            "dependencies:\n\n    # numeric\n    - numpy   >=1.20\n    - pandas\n"
        },
        {"env": "channels: [conda-forge]\ndependencies: [numpy>=1.20, pandas]\n"},
    ),
    (
        "environment.yml vs the same inline options (a pip: section adds conda `pip`)",
        {
            "env": "channels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - numpy\n"
            "  - pip:\n    - requests>=2\n"
        },
        {
            "packages": ["numpy", "pip"],
            "python": "3.11",
            "channels": ["conda-forge"],
            "pypi": ["requests>=2"],
        },
    ),
    (
        "explicit `category: main`",
        {"env": "category: main\ndependencies:\n  - numpy\n"},
        {"env": "dependencies:\n  - numpy\n"},
    ),
    (
        "`nodefaults` channel",
        {"env": "channels: [nodefaults, conda-forge]\ndependencies: [numpy]\n"},
        {"env": "channels: [conda-forge]\ndependencies: [numpy]\n"},
    ),
    ("PyPI name case", {"pypi": ["Requests"]}, {"pypi": ["requests"]}),
    ("PyPI name separators", {"pypi": ["zope.interface"]}, {"pypi": ["zope-interface"]}),
    ("PyPI specifier order", {"pypi": ["foo>=1,<2"]}, {"pypi": ["foo<2, >=1"]}),
    ("PyPI extras order", {"pypi": ["foo[b,a]"]}, {"pypi": ["foo[a,b]"]}),
    (
        "duplicate conda names merged",
        {"packages": ["numpy>=1", "numpy<2"]},
        {"packages": ["numpy >=1,<2"]},
    ),
    (
        "requirements.txt vs --pypi",
        {"req": "# docs\nrequests>=2.31  # http\n\nnumpy\n"},
        {"pypi": ["numpy", "requests>=2.31"]},
    ),
    (
        "continuation lines and hashes in requirements.txt",
        {"req": "requests==2.31.0 \\\n    --hash=sha256:abc\n"},
        {"pypi": ["requests==2.31.0"]},
    ),
    (
        "repeated channel",
        {"channels": ["conda-forge", "conda-forge"]},
        {"channels": ["conda-forge"]},
    ),
    ("channel URL slash", {"channels": ["https://x.org/c/"]}, {"channels": ["https://x.org/c"]}),
    (
        "virtual package name case",
        {"virtual_packages": ["__GLIBC=2.28"]},
        {"virtual_packages": ["__glibc=2.28"]},
    ),
    (
        "--extra-index-url alone means PyPI first",
        {"req": "--extra-index-url https://x.org/simple\nfoo\n"},
        {"req": "-i https://pypi.org/simple\n--extra-index-url https://x.org/simple/\nfoo\n"},
    ),
]

DIFFERENT: list[tuple[str, Request, Request]] = [
    ("version constraint", {"packages": ["pandas>=1.0"]}, {"packages": ["pandas>=1.1"]}),
    (
        "channel order",
        {"channels": ["conda-forge", "bioconda"]},
        {"channels": ["bioconda", "conda-forge"]},
    ),
    ("added channel", {"channels": ["conda-forge"]}, {"channels": ["conda-forge", "bioconda"]}),
    (
        "virtual-package override",
        {"packages": ["numpy"]},
        {"packages": ["numpy"], "virtual_packages": ["__glibc=2.28"]},
    ),
    (
        "category",
        {"env": "category: dev\ndependencies: [numpy]\n"},
        {"env": "dependencies: [numpy]\n"},
    ),
    (
        "selector",
        {"env": "dependencies:\n  - numpy  # [linux]\n"},
        {"env": "dependencies:\n  - numpy\n"},
    ),
    (
        "selector word",
        {"env": "dependencies:\n  - numpy  # [linux]\n"},
        {"env": "dependencies:\n  - numpy  # [linux64]\n"},
    ),
    ("python constraint", {"python": "3.9"}, {"python": "3.10"}),
    ("python series vs exact version", {"python": "3.9|3.10"}, {"python": "==3.9|==3.10"}),
    ("build string", {"packages": ["numpy * py311*"]}, {"packages": ["numpy"]}),
    ("channel-qualified spec", {"packages": ["conda-forge::numpy"]}, {"packages": ["numpy"]}),
    ("PyPI extras", {"pypi": ["requests[socks]"]}, {"pypi": ["requests"]}),
    (
        "PyPI index",
        {"req": "--extra-index-url https://x.org/simple\nfoo\n"},
        {"req": "foo\n"},
    ),
    (
        "primary vs extra index",
        {"req": "-i https://x.org/simple\nfoo\n"},
        {"req": "--extra-index-url https://x.org/simple\nfoo\n"},
    ),
    ("conda vs PyPI of one name", {"packages": ["requests"]}, {"pypi": ["requests"]}),
    ("marker", {"pypi": ["foo; sys_platform == 'linux'"]}, {"pypi": ["foo"]}),
    ("PyPI URL", {"pypi": ["foo @ https://x.org/foo-1.0.tar.gz"]}, {"pypi": ["foo"]}),
]


def _request_id(tmp_path: Path, request: Request) -> str:
    tmp_path.mkdir()
    options = dict(request)
    if "env" in options:
        path = tmp_path / "environment.yml"
        path.write_text(options.pop("env"))
        options["env_files"] = [path]
    if "req" in options:
        path = tmp_path / "requirements.txt"
        path.write_text(options.pop("req"))
        options["requirement_files"] = [path]
    return req_id(load_spec(**options).spec)


@pytest.mark.parametrize(("why", "left", "right"), SAME, ids=[case[0] for case in SAME])
def test_same_request_same_req_id(why: str, left: Request, right: Request, tmp_path: Path) -> None:
    assert _request_id(tmp_path / "a", left) == _request_id(tmp_path / "b", right), why


@pytest.mark.parametrize(("why", "left", "right"), DIFFERENT, ids=[case[0] for case in DIFFERENT])
def test_changed_meaning_new_req_id(
    why: str, left: Request, right: Request, tmp_path: Path
) -> None:
    assert _request_id(tmp_path / "a", left) != _request_id(tmp_path / "b", right), why
