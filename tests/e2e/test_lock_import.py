"""`resolve --from-lock` through a real daemon and agent: real conda-lock and pixi files
registered without solving (`--no-archives`: their conda-forge URLs are out of reach), and
locks written against the loopback channel fetched, verified against the lock's hashes and
cached — a tampered hash fails the job naming the package and both hashes, storing nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli import one_json, run_client

from envd.client.lock_readers import read_lock
from harness import ROOT, ChannelServer, Cluster, serve_channel

pytestmark = pytest.mark.e2e
LOCKS = ROOT / "tests" / "fixtures" / "locks"
CONDA_LOCK = LOCKS / "conda-lock" / "test-install-with-pip-deps" / "conda-lock.yml"
PIXI = LOCKS / "pixi" / "geos-rs" / "pixi.lock"
DEMO_CHANNEL = ROOT / "examples" / "channels" / "archives-demo"
ALL = ["linux-64", "linux-aarch64", "osx-64", "osx-arm64", "win-64"]


@pytest.fixture
def demo_channel() -> Iterator[ChannelServer]:
    with serve_channel(DEMO_CHANNEL) as server:
        yield server


def started(cluster: Cluster, platforms: list[str]) -> Cluster:
    cluster.start_daemon()
    cluster.start_agent("agent-1", platforms)
    return cluster


def import_lock(cluster: Cluster, tmp_path: Path, *args: str) -> Any:
    out = run_client(
        "--coordinator", cluster.address, "resolve", "--from-lock", *args, "--json", cwd=tmp_path
    )
    return out, one_json(out)


def description(cluster: Cluster, req_id: str, platform: str, full_id: str) -> dict[str, Any]:
    path = cluster.root / "store" / "envs" / req_id / platform / f"{full_id}.json"
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def test_real_locks_register_without_solving(tmp_path: Path, cluster: Cluster) -> None:
    started(cluster, ALL)
    for path in (CONDA_LOCK, PIXI):
        lock = read_lock(path)
        out, first = import_lock(cluster, tmp_path, str(path), "--no-archives")
        assert out.returncode == 0, out.stderr
        assert [e["platform"] for e in first["environments"]] == [
            lp.platform for lp in lock.platforms
        ]
        for entry in first["environments"]:
            assert entry["outcome"] == "resolved", entry
            doc = description(cluster, first["req_id"], entry["platform"], entry["full_id"])
            assert doc["solver"]["name"] == "envd-lock"
            assert entry["platform"] in doc["spec"]["locked"]
            pinned = lock.packages_for(entry["platform"]) or ()
            assert {(p["name"], p["url"], p["sha256"]) for p in doc["packages"]} == {
                (p.name, p.url, p.sha256) for p in pinned
            }
        out, again = import_lock(cluster, tmp_path, str(path), "--no-archives")
        assert again["req_id"] == first["req_id"]
        assert {e["outcome"] for e in again["environments"]} == {"cache_hit"}
    assert not (cluster.root / "store" / "pkgs").exists()  # nothing fetched


def demo_lock(folder: Path, server: ChannelServer, tamper: bool = False) -> Path:
    """A conda-lock v1 file pinning the demo channel's two packages for linux-64."""
    repodata = json.loads((DEMO_CHANNEL / "noarch" / "repodata.json").read_text())
    records = {**repodata["packages"], **repodata["packages.conda"]}
    lines = ["version: 1", "metadata:", "  channels:", f"  - url: {server.url}",
             "  platforms:", "  - linux-64", "package:"]  # fmt: skip
    for filename, record in sorted(records.items()):
        sha256 = record["sha256"]
        if tamper and record["name"] == "envd-demo-hello":
            sha256 = "0" * 64
        lines += [
            f"- name: {record['name']}", f"  version: '{record['version']}'",
            "  manager: conda", "  platform: linux-64",
            "  dependencies: {" + ", ".join(
                f"{d.split()[0]}: '{d.partition(' ')[2]}'" for d in record["depends"]) + "}",
            f"  url: {server.url}/noarch/{filename}",
            f"  hash: {{md5: {record['md5']}, sha256: {sha256}}}",
        ]  # fmt: skip
    path = folder / ("tampered-lock.yml" if tamper else "conda-lock.yml")
    path.write_text("\n".join(lines) + "\n")
    return path


def stored_archives(cluster: Cluster) -> set[str]:
    root = cluster.root / "store" / "pkgs"
    return {p.name for p in root.glob("*/*")} if root.exists() else set()


def test_lock_archives_fetched_verified_and_cached(
    tmp_path: Path, cluster: Cluster, demo_channel: ChannelServer
) -> None:
    started(cluster, ["linux-64"])
    out, result = import_lock(cluster, tmp_path, str(demo_lock(tmp_path, demo_channel)))
    assert out.returncode == 0, out.stderr
    (entry,) = result["environments"]
    assert entry["outcome"] == "resolved"
    assert {"envd-demo-hello-1.0-0.conda", "cph_test_data-0.0.1-0.tar.bz2"} <= stored_archives(
        cluster
    )
    doc = description(cluster, result["req_id"], "linux-64", entry["full_id"])
    hello = next(p for p in doc["packages"] if p["name"] == "envd-demo-hello")
    assert hello["depends"] == ["cph_test_data >=0.0.1"]
    assert [f["format"] for f in hello["formats"]] == [".conda"]

    # the same packages as an @EXPLICIT file with md5s only: described by the fetched sha256
    explicit = tmp_path / "explicit.txt"
    explicit.write_text(
        "# platform: linux-64\n@EXPLICIT\n"
        f"{demo_channel.url}/noarch/envd-demo-hello-1.0-0.conda#1bb2f4d57722d927169cd86eba9ae848\n"
    )
    out, result = import_lock(cluster, tmp_path, str(explicit))
    assert out.returncode == 0, out.stderr
    (entry,) = result["environments"]
    doc = description(cluster, result["req_id"], "linux-64", entry["full_id"])
    assert [p["sha256"] for p in doc["packages"]] == [hello["sha256"]]
    out, refused = import_lock(cluster, tmp_path, str(explicit), "--no-archives")
    assert out.returncode == 2
    assert "has an md5 but no sha256" in refused["error"]["message"]


def test_tampered_hash_fails_naming_package_and_both_hashes(
    tmp_path: Path, cluster: Cluster, demo_channel: ChannelServer
) -> None:
    started(cluster, ["linux-64"])
    real = json.loads((DEMO_CHANNEL / "noarch" / "repodata.json").read_text())
    actual = real["packages.conda"]["envd-demo-hello-1.0-0.conda"]["sha256"]
    out, result = import_lock(cluster, tmp_path, str(demo_lock(tmp_path, demo_channel, True)))
    assert out.returncode != 0
    (entry,) = result["environments"]
    message = entry["error"]["message"]
    assert "`envd-demo-hello`" in message and actual in message and "0" * 64 in message
    assert "envd-demo-hello-1.0-0.conda" not in stored_archives(cluster)
    assert not (cluster.root / "store" / "envs" / result["req_id"]).exists()


def demo_env(folder: Path, server: ChannelServer, extra: str = "") -> Path:
    path = folder / "environment.yml"
    path.write_text(
        f"channels:\n  - {server.url}\ndependencies:\n  - envd-demo-hello\n{extra}"
        "platforms:\n  - linux-64\n"
    )
    return path


def test_status_command_exit_codes_and_json(tmp_path: Path, demo_channel: ChannelServer) -> None:
    env, lock = demo_env(tmp_path, demo_channel), demo_lock(tmp_path, demo_channel)

    def status() -> tuple[int, Any]:
        out = run_client("status", "-f", str(env), "--lock", str(lock), "--json", cwd=tmp_path)
        return out.returncode, one_json(out)

    assert status() == (0, {"status": "up-to-date", "reason": None, "lock": str(lock),
                            "platforms": ["linux-64"]})  # fmt: skip
    demo_env(tmp_path, demo_channel, "  - packaging\n")
    code, document = status()
    assert (code, document["status"], document["reason"]) == (
        10, "out-of-date",
        "Dependency 'packaging' is required but not found in the lock for platform 'linux-64'",
    )  # fmt: skip
    lock.unlink()
    code, document = status()
    assert (code, document["status"]) == (11, "missing")
    text = run_client("status", "-f", str(env), "--lock", str(lock), cwd=tmp_path)
    assert text.stdout == f"missing: Lock file '{lock}' does not exist\n"


def test_resolve_lock_modes(tmp_path: Path, cluster: Cluster, demo_channel: ChannelServer) -> None:
    started(cluster, ["linux-64"])
    env, lock = demo_env(tmp_path, demo_channel), demo_lock(tmp_path, demo_channel)
    _, imported = import_lock(cluster, tmp_path, str(lock), "--no-archives")

    def resolve(*flags: str) -> Any:
        return run_client(
            "--coordinator", cluster.address, "resolve", "-f", str(env), "--lock", str(lock),
            "--no-archives", "--json", *flags, cwd=tmp_path,
        )  # fmt: skip

    # up to date: the lock's environment, not a solve
    out = resolve()
    assert out.returncode == 0, out.stderr
    assert one_json(out)["req_id"] == imported["req_id"]
    # stale: --locked refuses naming the fix, --frozen uses the lock as it is
    demo_env(tmp_path, demo_channel, "  - cph_test_data >=2\n")
    out = resolve("--locked")
    assert out.returncode == 2
    error = one_json(out)["error"]
    assert error["message"] == (
        "the lock is out-of-date and `--locked` does not update it: Dependency 'cph_test_data' "
        "requires 'cph_test_data >=2' but the lock has version '0.0.1' for platform 'linux-64'"
    )
    assert error["hint"].startswith("update it with `envd-client --coordinator ")
    assert "--locked" not in error["hint"] and f"--lock {lock}" in error["hint"]
    out = resolve("--frozen")
    assert out.returncode == 0, out.stderr
    assert one_json(out)["req_id"] == imported["req_id"]
    # stale without a flag: re-solved (an unsatisfiable spec now: the solve's error)
    out = resolve()
    assert out.returncode == 3
    assert "cph_test_data" in out.stdout and one_json(out)["req_id"] != imported["req_id"]


def test_no_lock_resolves_and_rewrites(
    tmp_path: Path, cluster: Cluster, demo_channel: ChannelServer
) -> None:
    """`--no-lock` solves; the lock is then rewritten (`envd-client lock`'s writer) and is
    up to date for the spec."""
    started(cluster, ["linux-64"])
    env, lock = demo_env(tmp_path, demo_channel), demo_lock(tmp_path, demo_channel)
    _, imported = import_lock(cluster, tmp_path, str(lock), "--no-archives")
    before = lock.read_text()
    out = run_client(
        "--coordinator", cluster.address, "resolve", "-f", str(env), "--lock", str(lock),
        "--no-lock", "--no-archives", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert one_json(out)["req_id"] != imported["req_id"]  # the spec's: solved
    assert f"wrote lock {lock}" in out.stderr
    assert lock.read_text() != before
    status = run_client("status", "-f", str(env), "--lock", str(lock), "--json", cwd=tmp_path)
    assert one_json(status)["status"] == "up-to-date"
