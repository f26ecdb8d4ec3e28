"""requirements.txt parsing: pip's line syntax, includes, indexes, and what envd refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.errors import InvalidSpecError
from envd.requirements_txt import (
    DEFAULT_INDEX_URL,
    PipRequirements,
    read_requirements_file,
    requirement_text,
)
from envd.spec import RawDependency
from envd.spec_input import load_spec

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "specs"


def write(tmp_path: Path, text: str, name: str = "requirements.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error(path: Path) -> InvalidSpecError:
    with pytest.raises(InvalidSpecError) as caught:
        read_requirements_file(path)
    return caught.value


def test_comments_blank_lines_and_continuations(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# pinned by hand\n"
        "\n"
        "requests>=2.31  # http\n"
        "numpy \\\n"
        "  >=1.20,<2\n"
        "rich; python_version >= '3.8'\n"
        "   \n"
        "url-fragment @ https://x.org/p-1.0.tar.gz#sha256=ab\n",
    )
    src = str(path)
    assert read_requirements_file(path) == PipRequirements(
        dependencies=(
            RawDependency("requests>=2.31", src, 3),
            RawDependency("numpy   >=1.20,<2", src, 4),
            RawDependency("rich; python_version >= '3.8'", src, 6),
            RawDependency("url-fragment @ https://x.org/p-1.0.tar.gz#sha256=ab", src, 8),
        ),
    )


def test_hashes_are_dropped(tmp_path: Path) -> None:
    # the shape pip-compile --generate-hashes writes
    path = write(
        tmp_path,
        "certifi==2024.2.2 \\\n"
        "    --hash=sha256:0569859f95fc761b18b45ef421b1290a0f65f147e92a1e5eb3e635f9a5e4e66f \\\n"
        "    --hash sha256:dc383c07b76109f368f6106eee2b593b04a011ea4d55f652c6ca24a754d1cdd1\n"
        "    # via requests\n",
    )
    assert [d.text for d in read_requirements_file(path).dependencies] == ["certifi==2024.2.2"]


def test_includes_are_relative_and_cycle_safe(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    top = write(tmp_path, "-r sub/a.txt\ntop\n", "top.txt")
    write(tmp_path / "sub", "a\n--requirement=b.txt\n-r ../top.txt\n", "a.txt")
    write(tmp_path / "sub", "b\n-rb.txt\n-r a.txt\n", "b.txt")
    deps = read_requirements_file(top).dependencies
    assert [(d.text, Path(d.source).name, d.line) for d in deps] == [
        ("a", "a.txt", 1),
        ("b", "b.txt", 1),
        ("top", "top.txt", 2),
    ]


def test_index_options(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "--index-url https://mirror.example.org/simple/\n"
        "--extra-index-url=https://extra.example.org/simple\n"
        "-i https://mirror.example.org/simple/\n"
        "foo\n",
    )
    assert read_requirements_file(path).indexes == (
        "https://mirror.example.org/simple/",
        "https://extra.example.org/simple",
    )
    only_extra = write(tmp_path, "--extra-index-url https://extra.example.org/simple\n", "e.txt")
    assert read_requirements_file(only_extra).indexes == (
        DEFAULT_INDEX_URL,
        "https://extra.example.org/simple",
    )
    assert read_requirements_file(write(tmp_path, "foo\n", "n.txt")).indexes == ()


def test_bare_urls_get_a_name() -> None:
    assert requirement_text("git+https://github.com/dask/distributed", "x") == (
        "distributed @ git+https://github.com/dask/distributed"
    )
    assert requirement_text("git+https://github.com/org/repo.git@v1#egg=real-name", "x") == (
        "real-name @ git+https://github.com/org/repo.git@v1#egg=real-name"
    )
    assert requirement_text("https://x.org/requests-2.31.0-py3-none-any.whl", "x") == (
        "requests @ https://x.org/requests-2.31.0-py3-none-any.whl"
    )
    assert requirement_text("https://x.org/foo_bar-1.0.tar.gz", "x") == (
        "foo-bar @ https://x.org/foo_bar-1.0.tar.gz"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "foo\n-c constraints.txt\n",
            "failed to parse `-c constraints.txt` at {path}:2: constraint files are not "
            "supported yet",
        ),
        (
            "-e .[socks]\n",
            "failed to parse requirement `-e .[socks]` at {path}:1: editable installs are not "
            "supported",
        ),
        (
            "-f ./wheels\nfoo\n",
            "failed to read `--find-links ./wheels` at {path}:1: local find-links folders are "
            "not supported (agents on other machines can't read them); only http(s) URLs are",
        ),
        ("foo\n--pre\n", "failed to parse option `--pre` at {path}:2: not supported"),
        ("--no-index\n", "failed to parse option `--no-index` at {path}:1: not supported"),
        (
            "foo --global-option=x\n",
            "failed to parse option `--global-option` at {path}:1: not supported",
        ),
        (
            "-i https://a.org/simple\n-i https://b.org/simple\n",
            "failed to set index URL `https://b.org/simple` at {path}:2: "
            "`https://a.org/simple` was already set at {path}:1",
        ),
        (
            "-r https://x.org/requirements.txt\n",
            "failed to include `https://x.org/requirements.txt` at {path}:1: remote "
            "requirement files are not supported",
        ),
        (
            "-r missing.txt\n",
            "failed to include `missing.txt` at {path}:1: no such file `{dir}/missing.txt`",
        ),
        (
            "./local/package\n",
            "failed to read local requirement `./local/package` at {path}:1: no such "
            "directory or file `{dir}/local/package`",
        ),
        (
            "https://x.org/archive/main\n",
            "failed to parse PyPI requirement `https://x.org/archive/main` at {path}:1: "
            "cannot tell which package the URL is",
        ),
        ("--index-url\n", "failed to parse `--index-url` at {path}:1: missing value"),
    ],
)
def test_refused_lines(text: str, message: str, tmp_path: Path) -> None:
    path = write(tmp_path, text)
    assert error(path).message == message.format(path=path, dir=tmp_path)


def test_bad_requirement_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "requests\n\nnumpy>>1\n")
    with pytest.raises(
        InvalidSpecError, match=rf"^failed to parse PyPI requirement `numpy>>1` at {path}:3: "
    ):
        load_spec(requirement_files=[path])


REAL_FILES = sorted(FIXTURES.rglob("*.txt"))
REFUSED = {"requests/requirements-dev.txt": "editable installs are not supported"}


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_real_files(path: Path) -> None:
    name = str(path.relative_to(FIXTURES))
    if name in REFUSED:
        with pytest.raises(InvalidSpecError, match=REFUSED[name]):
            load_spec(requirement_files=[path])
        return
    spec = load_spec(requirement_files=[path]).spec
    assert spec.pypi
    assert spec.conda == ()


def test_real_includes() -> None:
    # numpy's all_requirements.txt includes eight files, two of them twice (via typing).
    parsed = read_requirements_file(FIXTURES / "numpy/requirements/all_requirements.txt")
    sources = {Path(d.source).name for d in parsed.dependencies}
    assert len(sources) == 8
    spec = load_spec(requirement_files=[FIXTURES / "numpy/requirements/all_requirements.txt"])
    assert 'ninja; sys_platform != "emscripten"' in spec.spec.pypi_requirements_for("linux-64")


def test_find_links_are_kept_in_order_from_files_and_environment_pip_lists(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "-f https://links.example/wheels/\n"
        "--find-links=https://other.example/flat.html\n"
        "--find-links https://links.example/wheels/\n"
        "foo\n",
    )
    assert read_requirements_file(path).find_links == (
        "https://links.example/wheels/",  # the trailing `/` stays: relative links need it
        "https://other.example/flat.html",
    )
    env = write(
        tmp_path,
        "dependencies:\n  - pip:\n    - -f https://links.example/wheels/\n    - foo\n",
        "environment.yml",
    )
    spec = load_spec(env_files=[env], find_links=["https://inline.example/links/"]).spec
    assert spec.pypi_find_links == (
        "https://links.example/wheels/",
        "https://inline.example/links/",
    )


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("https://user:secret@links.example/wheels/", "find-links URL `https://user:***@"),
        ("/srv/wheels", "local find-links folders are not supported"),
        ("file:///srv/wheels", "local find-links folders are not supported"),
    ],
)
def test_find_links_refused_with_credentials_or_local(
    value: str, words: str, tmp_path: Path
) -> None:
    caught = error(write(tmp_path, f"--find-links {value}\nfoo\n"))
    assert words in caught.message
    assert "secret" not in caught.message + (caught.hint or "")
    with pytest.raises(InvalidSpecError) as inline:
        load_spec(pypi=["foo"], find_links=[value])
    assert words in inline.value.message
