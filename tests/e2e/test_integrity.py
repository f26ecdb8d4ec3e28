"""A store someone altered or broke, through the CLI's embedded default: nothing altered is
served, one broken object blocks nothing else, and `create` installs exactly the description
or fails clearly, leaving no prefix."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from stored_env import archived_package, store_environment
from test_cli import one_json, run_client
from test_create import demo_env

from envd.platforms import host_platform_name
from envd.store.layout import default_key, description_key
from envd.store.local import LocalStore
from harness import ROOT, Cluster

pytestmark = pytest.mark.e2e
PACKAGES = ROOT / "tests" / "fixtures" / "packages"
on_linux_64 = pytest.mark.skipif(
    host_platform_name() != "linux-64", reason="the fixture archives are linux-64 and noarch"
)


def home(tmp_path: Path) -> dict[str, str]:
    return {"ENVD_HOME": str(tmp_path / ".envd"), "XDG_CACHE_HOME": str(tmp_path / "cache")}


def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / ".envd" / "store")


# The embedded coordinator's shutdown sometimes logs grpc's CancelledError for the agent's
# `Connect` stream when a command ran for a second or more (a daemon-side race, not `create`'s:
# reported to the lead); any other traceback fails the test.
SHUTDOWN_NOISE = re.compile(
    r"^.* ERROR grpc\._cython\.cygrpc Exception not handled by _handle_exceptions in servicer "
    r"method \[/envd\.v1\.Agents/Connect\]\n(Traceback .*\n(  .*\n)*asyncio\.exceptions\."
    r"CancelledError\n)+",
    re.MULTILINE,
)


def without_shutdown_noise(stderr: str) -> str:
    cleaned = SHUTDOWN_NOISE.sub("", stderr)
    assert "Traceback" not in cleaned
    return cleaned


def resolve(tmp_path: Path, env_file: Path, *flags: str) -> tuple[dict[str, Any], str]:
    out = run_client("resolve", "-f", str(env_file), "--arch", "linux-64", "--json", *flags,
                     cwd=tmp_path, env=home(tmp_path))  # fmt: skip
    assert out.returncode == 0, out.stderr
    stderr = without_shutdown_noise(out.stderr)
    document = one_json(out)
    (result,) = document["environments"]
    return {**result, "req_id": document["req_id"]}, stderr


def test_a_tampered_description_is_not_served_as_a_cache_hit(tmp_path: Path) -> None:
    env_file = demo_env(tmp_path)
    first, _ = resolve(tmp_path, env_file)
    assert resolve(tmp_path, env_file)[0]["outcome"] == "cache_hit"
    key = description_key(first["req_id"], "linux-64", first["full_id"])
    path = store(tmp_path).root / key
    honest = json.loads(path.read_text("utf-8"))
    tampered = json.loads(path.read_text("utf-8"))
    tampered["packages"][0]["url"] = "https://evil.example/cph_test_data-0.0.1-0.tar.bz2"
    path.write_text(json.dumps(tampered, indent=2, sort_keys=True) + "\n")
    again, stderr = resolve(tmp_path, env_file)
    assert again["outcome"] == "resolved"  # not a cache hit: resolved anew
    assert again["full_id"] == first["full_id"]
    assert "treated as no default" in stderr and "`digest` is" in stderr
    repaired = json.loads(path.read_text("utf-8"))
    assert repaired["packages"][0]["url"] == honest["packages"][0]["url"]
    assert resolve(tmp_path, env_file)[0]["outcome"] == "cache_hit"


def test_a_corrupt_description_and_a_garbage_pointer_block_neither_list_nor_resolve(
    tmp_path: Path,
) -> None:
    hello_file = demo_env(tmp_path)
    data_file = tmp_path / "data.yml"
    data_file.write_text(
        f"channels:\n  - {tmp_path / 'channel'}\ndependencies:\n  - cph_test_data\n"
    )
    hello, _ = resolve(tmp_path, hello_file, "--no-archives")
    data, _ = resolve(tmp_path, data_file, "--no-archives")
    truncated = description_key(hello["req_id"], "linux-64", hello["full_id"])
    path = store(tmp_path).root / truncated
    path.write_bytes(path.read_bytes()[:200])
    garbage = default_key(data["req_id"], "linux-64")
    (store(tmp_path).root / garbage).write_bytes(b"\x00not a pointer")

    listed = run_client("list", "--json", cwd=tmp_path, env=home(tmp_path))
    assert listed.returncode == 0, listed.stderr
    assert [(e["req_id"], e["is_default"]) for e in one_json(listed)["environments"]] == [
        (data["req_id"], False)
    ]
    assert f"skipped unreadable `{truncated}`: failed to read description" in listed.stderr
    assert f"skipped unreadable `{garbage}`: failed to read default pointer" in listed.stderr

    forced, _ = resolve(tmp_path, hello_file, "--no-archives", "--force")
    assert forced["outcome"] == "resolved" and forced["full_id"] == hello["full_id"]
    anew, stderr = resolve(tmp_path, data_file, "--no-archives")  # no default, not an error
    assert anew["outcome"] == "resolved"
    assert f"failed to read default pointer `{garbage}`" in stderr
    assert resolve(tmp_path, data_file, "--no-archives")[0]["outcome"] == "cache_hit"
    assert resolve(tmp_path, hello_file, "--no-archives")[0]["outcome"] == "cache_hit"
    relisted = one_json(run_client("list", "--json", cwd=tmp_path, env=home(tmp_path)))
    assert sorted((e["req_id"], e["is_default"]) for e in relisted["environments"]) == sorted(
        [(hello["req_id"], True), (data["req_id"], True)]
    )


def create(tmp_path: Path, req_id: str) -> tuple[int, str]:
    out = run_client("create", req_id, "--arch", "linux-64", "--prefix", "env",
                     cwd=tmp_path, env=home(tmp_path))  # fmt: skip
    return out.returncode, without_shutdown_noise(out.stderr)


@on_linux_64
def test_create_refuses_an_archive_that_is_another_package_and_leaves_no_prefix(
    tmp_path: Path,
) -> None:
    recipes = PACKAGES / "conda-test-recipes"
    dependency, dependent = recipes / "dependency-2.0-0.conda", recipes / "dependent-2.0-0.conda"
    swapped = archived_package(dependent, stored_as=dependency)
    doc = store_environment(
        store(tmp_path), [archived_package(dependency), swapped], [dependency], "linux-64"
    )
    code, stderr = create(tmp_path, doc["req_id"])
    assert code == 6
    assert (
        "error: failed to verify `dependency-2.0-0.conda` from the store: the description lists "
        "it for package `dependent 2.0 0 (noarch)`, its info/index.json says `dependency 2.0 0 "
        "(noarch)`\n"
    ) in stderr
    assert not (tmp_path / "env").exists()


@on_linux_64
def test_create_of_a_package_whose_files_are_not_its_paths_json_fails_clearly(
    tmp_path: Path,
) -> None:
    zlib = PACKAGES / "conda-format-repo-linux-64" / "zlib-1.2.11-h7b6447c_3.tar.bz2"
    doc = store_environment(store(tmp_path), [archived_package(zlib)], [zlib], "linux-64")
    code, stderr = create(tmp_path, doc["req_id"])
    assert code == 6
    assert stderr.endswith(
        "error: failed to install package `zlib 1.2.11 h7b6447c_3` from "
        "`zlib-1.2.11-h7b6447c_3.tar.bz2`: `lib/libz.so` is a regular file of 0 bytes in the "
        "archive where `info/paths.json` says symlink\n"
        "hint: the package is broken as published: its files do not match its info/paths.json; "
        "pin another build of it\n"
    )
    assert not (tmp_path / "env").exists()


def test_a_remote_list_reports_what_it_skipped(tmp_path: Path, cluster: Cluster) -> None:
    recipes = PACKAGES / "conda-test-recipes"
    dependency, dependent = recipes / "dependency-2.0-0.conda", recipes / "dependent-2.0-0.conda"
    remote = LocalStore(tmp_path / "store")  # the store the cluster's daemon serves
    broken = store_environment(remote, [archived_package(dependency)], [dependency], "linux-64")
    kept = store_environment(remote, [archived_package(dependent)], [dependent], "linux-64")
    truncated = description_key(broken["req_id"], "linux-64", broken["full_id"])
    (remote.root / truncated).write_bytes((remote.root / truncated).read_bytes()[:200])
    garbage = default_key(kept["req_id"], "linux-64")
    (remote.root / garbage).write_bytes(b"\x00not a pointer")
    cluster.start_daemon()

    listed = run_client("--coordinator", cluster.address, "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [(e["req_id"], e["is_default"]) for e in one_json(listed)["environments"]] == [
        (kept["req_id"], False)
    ]
    description_line, pointer_line = sorted(  # in the store's order: by req_id
        listed.stderr.splitlines(), key=lambda line: truncated not in line
    )
    assert description_line.startswith(
        f"warning: skipped unreadable `{truncated}`: failed to read description `{truncated}`: "
    )
    assert pointer_line.startswith(
        f"warning: skipped unreadable `{garbage}`: failed to read default pointer `{garbage}`"
    )


def test_a_remote_list_reports_at_most_a_hundred_skipped_objects(
    tmp_path: Path, cluster: Cluster
) -> None:
    remote = LocalStore(tmp_path / "store")
    for n in range(120):
        remote.put_if_absent(description_key(f"{n:040x}", "linux-64", "f" * 40), b"garbage")
    cluster.start_daemon()
    listed = run_client("--coordinator", cluster.address, "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stderr.splitlines()
    assert len(lines) == 100
    assert all(line.startswith("warning: skipped unreadable `envs/") for line in lines[:99])
    assert lines[99] == "warning: and 21 more unreadable objects: see the coordinator's log"
