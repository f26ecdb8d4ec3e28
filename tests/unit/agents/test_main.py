"""`envd-agent` flags: the stage deadlines, their defaults and what they add up to."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from envd.agents import fetch
from envd.agents.main import host_pythons, parse_args
from envd.errors import ConfigError

STALL_BUDGET = 120.0  # a stalled channel fails the job within 2 minutes with default flags


def test_every_stage_has_a_deadline_flag_with_a_default() -> None:
    args = parse_args(["--coordinator", "127.0.0.1:1"])
    assert (args.repodata_timeout, args.solve_timeout, args.fetch_timeout,
            args.upload_timeout, args.job_timeout) == (60.0, 300.0, 20.0, 600.0, 3600.0)  # fmt: skip
    args = parse_args(["--coordinator", "x:1", "--repodata-timeout", "2.5", "--fetch-timeout",
                       "1", "--upload-timeout", "3", "--job-timeout", "4", "--solve-timeout", "5"])  # fmt: skip
    assert (args.repodata_timeout, args.fetch_timeout, args.upload_timeout,
            args.job_timeout, args.solve_timeout) == (2.5, 1.0, 3.0, 4.0, 5.0)  # fmt: skip


def test_a_stalled_channel_fails_within_two_minutes_with_default_flags() -> None:
    """Repodata: one deadline over every request and retry. Archives: each attempt waits
    `--fetch-timeout` for data, with backoff (at most 1.5x its base) between attempts."""
    args = parse_args(["--coordinator", "127.0.0.1:1"])
    assert args.repodata_timeout < STALL_BUDGET
    backoff = sum(
        min(fetch.MAX_DELAY, fetch.DEFAULT_BASE_DELAY * 2 ** (n - 1)) * 1.5
        for n in range(1, fetch.DEFAULT_ATTEMPTS)
    )
    assert fetch.DEFAULT_ATTEMPTS * args.fetch_timeout + backoff < STALL_BUDGET


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf", "nan"])
def test_a_deadline_must_be_a_positive_number_of_seconds(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--coordinator", "x:1", "--fetch-timeout", value])
    assert f"argument --fetch-timeout: `{value}` is not a positive number of seconds" in (
        capsys.readouterr().err
    )


def test_plain_http_hosts_are_repeatable_and_none_by_default() -> None:
    assert parse_args(["--coordinator", "x:1"]).plain_http_host == []
    args = parse_args(["--coordinator", "x:1", "--plain-http-host", "mirror.lan:8080",
                       "--plain-http-host", "10.0.0.5"])  # fmt: skip
    assert args.plain_http_host == ["mirror.lan:8080", "10.0.0.5"]


def test_build_pythons_are_this_python_plus_those_named(tmp_path: Path) -> None:
    own = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert host_pythons([]) == {own: sys.executable}
    assert host_pythons([], own=False) == {}  # `--no-own-build-python`
    assert host_pythons([sys.executable]) == {own: sys.executable}  # asked, same version
    with pytest.raises(ConfigError, match=r"^failed to use `--build-python .*/nope`: it does"):
        host_pythons([str(tmp_path / "nope")])
    args = parse_args(["--coordinator", "x:1", "--native-platform", "osx-arm64",
                       "--build-python", "/p1", "--build-python", "/p2"])  # fmt: skip
    assert args.own_build_python
    assert not parse_args(["--coordinator", "x:1", "--no-own-build-python"]).own_build_python
    assert (args.native_platform, args.build_python, args.build_timeout) == (
        "osx-arm64",
        ["/p1", "/p2"],
        600.0,
    )


def test_the_build_prefixes_kept_is_a_flag_that_reaches_the_builder(tmp_path: Path) -> None:
    from envd.agents.build_prefix import DEFAULT_KEEP
    from envd.agents.fetch import Fetcher
    from envd.agents.native_build import NativeBuilds
    from envd.store.local import LocalStore

    assert parse_args(["--coordinator", "x:1"]).build_prefixes == DEFAULT_KEEP
    kept = parse_args(["--coordinator", "x:1", "--build-prefixes", "0"]).build_prefixes
    builds = NativeBuilds(LocalStore(tmp_path), Fetcher(attempts=1), tmp_path, agent_id="a",
                          native_platform="linux-64", pythons={}, prefixes_kept=kept)  # fmt: skip
    assert builds.prefixes.keep == 0
    for bad in ("-1", "two"):
        with pytest.raises(SystemExit):
            parse_args(["--coordinator", "x:1", "--build-prefixes", bad])
