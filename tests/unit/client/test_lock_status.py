"""`status --lock` logic on a real conda-lock file and its spec: the transitions and the reasons."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from envd.client.lock_readers import read_lock
from envd.client.lock_status import LockState, LockStatus, lock_status
from envd.spec_input import load_spec
from harness import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "locks" / "conda-lock" / "test-install-with-pip-deps"
PLATFORMS = ["linux-64", "linux-aarch64"]


def status(env: Path, lock: Path, platforms: list[str] = PLATFORMS) -> LockStatus:
    spec = load_spec(env_files=[env]).spec
    return lock_status(spec, platforms, read_lock(lock) if lock.exists() else None, lock)


def copied(tmp_path: Path) -> tuple[Path, Path]:
    env, lock = tmp_path / "environment.yml", tmp_path / "conda-lock.yml"
    shutil.copy(FIXTURE / "environment.yml", env)
    shutil.copy(FIXTURE / "conda-lock.yml", lock)
    return env, lock


def test_transitions(tmp_path: Path) -> None:
    env, lock = copied(tmp_path)
    assert status(env, lock) == LockStatus(LockState.UP_TO_DATE)
    # reorder and comment both files: still up to date
    env.write_text(
        "# the same spec\nplatforms:\n- linux-aarch64\n- linux-64\ndependencies:\n"
        "- pip:\n  - requests  # over pip\n- idna\nchannels:\n- conda-forge\n"
    )
    text = lock.read_text()
    head, _, body = text.partition("package:\n")
    entries = body.split("\n- ")
    lock.write_text("# edited\n" + head + "package:\n- " + "\n- ".join(reversed(
        [entries[0].removeprefix("- "), *entries[1:]])) + "\n")  # fmt: skip
    assert read_lock(lock).platforms == read_lock(FIXTURE / "conda-lock.yml").platforms
    assert status(env, lock) == LockStatus(LockState.UP_TO_DATE)
    # a new dependency: out of date, naming it
    env.write_text(env.read_text().replace("- idna\n", "- idna\n- packaging\n"))
    assert status(env, lock) == LockStatus(
        LockState.OUT_OF_DATE,
        "Dependency 'packaging' is required but not found in the lock for platform 'linux-64'",
    )
    lock.unlink()
    assert status(env, lock) == LockStatus(LockState.MISSING, f"Lock file '{lock}' does not exist")


@pytest.mark.parametrize(
    ("old", "new", "platforms", "reason"),
    [
        (
            "- idna\n",
            "- idna >=4\n",
            PLATFORMS,
            "Dependency 'idna' requires 'idna >=4' but the lock has version '3.4' for platform "
            "'linux-64'",
        ),
        (
            "  - requests\n",
            "  - requests>=3\n",
            PLATFORMS,
            "Dependency 'requests' requires 'requests>=3' but the lock has version '2.31.0' for "
            "platform 'linux-64'",
        ),
        (
            "  - requests\n",
            "  - flask\n",
            PLATFORMS,
            "Dependency 'flask' is required but not found in the lock for platform 'linux-64'",
        ),
        (
            "- idna\n",
            "- idna\n",
            ["linux-64", "osx-arm64"],
            "Platform 'osx-arm64' is required but not in the lock",
        ),
        (
            "- conda-forge\n",
            "- bioconda\n",
            PLATFORMS,
            "Channel 'https://conda.anaconda.org/conda-forge' is in the lock but not in the spec",
        ),
        (
            "- conda-forge\n",
            "- conda-forge\n- bioconda\n",
            PLATFORMS,
            "Channel 'https://conda.anaconda.org/bioconda' is required but not in the lock",
        ),
    ],
)
def test_out_of_date_reasons(
    tmp_path: Path, old: str, new: str, platforms: list[str], reason: str
) -> None:
    env, lock = copied(tmp_path)
    text = env.read_text()
    assert old in text
    env.write_text(text.replace(old, new, 1))
    assert status(env, lock, platforms) == LockStatus(LockState.OUT_OF_DATE, reason)


def test_version_constraint_met_and_python_checked(tmp_path: Path) -> None:
    env, lock = copied(tmp_path)
    env.write_text(env.read_text().replace("- idna\n", "- idna >=3,<4\n- python 3.12.*\n"))
    assert status(env, lock).status is LockState.UP_TO_DATE
    env.write_text(env.read_text().replace("- python 3.12.*\n", "- python 3.11.*\n"))
    assert status(env, lock) == LockStatus(
        LockState.OUT_OF_DATE,
        "Dependency 'python' requires 'python 3.11.*' but the lock has version '3.12.0' for "
        "platform 'linux-64'",
    )


def test_a_direct_reference_is_met_only_by_the_locked_artifact(tmp_path: Path) -> None:
    """`name @ URL` (what a local or git source becomes once packed: `envd-source://sha256/…`)
    is met by the lock's package at that URL, not by any of the same name: an edited directory
    or a moved git rev packs to another URL, and the lock is stale."""
    env, lock = copied(tmp_path)
    wheel = (
        "https://files.pythonhosted.org/packages/70/8e/0e2d847013cb52cd35b38c009bb167a1a26b2ce6"
        "cd6965bf26b47bc0bf44/requests-2.31.0-py3-none-any.whl"
    )
    env.write_text(env.read_text().replace("  - requests\n", f"  - requests @ {wheel}\n"))
    assert status(env, lock) == LockStatus(LockState.UP_TO_DATE)
    other = f"envd-source://sha256/{'a' * 64}/requests-2.31.0.tar.gz"
    env.write_text(env.read_text().replace(wheel, other))
    assert status(env, lock) == LockStatus(
        LockState.OUT_OF_DATE,
        f"Dependency 'requests' requires '{other}' but the lock has '{wheel}' for platform "
        "'linux-64'",
    )


def test_a_build_number_is_read_as_the_lock_export_reads_it(tmp_path: Path) -> None:
    # linux-64's python `hab00c5b_1_cpython`: the number is not the build string's last part
    env, lock = copied(tmp_path)
    lock.write_text(lock.read_text().replace("hab00c5b_0_cpython", "hab00c5b_1_cpython"))
    env.write_text(env.read_text().replace("- idna\n", "- idna\n- python[build_number=1]\n"))
    assert status(env, lock, ["linux-64"]).status is LockState.UP_TO_DATE
    env.write_text(env.read_text().replace("[build_number=1]", "[build_number=0]"))
    assert status(env, lock, ["linux-64"]).status is LockState.OUT_OF_DATE
