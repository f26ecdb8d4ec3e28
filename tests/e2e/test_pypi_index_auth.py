"""A private PyPI index behind basic auth: the login is the agent's (its netrc), never the
spec's, and the secret shows up nowhere — description, state, store, daemon and agent logs,
client output. And the coordinator refuses indexes its policy does not allow, before any job."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import one_json, run_client

from harness import Cluster
from pypi_index import Sdist, serve_index

pytestmark = pytest.mark.e2e
SECRET = "pypi-s3cret-7f3a"


def searched(cluster: Cluster, *outputs: str) -> list[str]:
    """Every place the secret must not be: where it was found."""
    found = [f"output {n}" for n, text in enumerate(outputs) if SECRET in text]
    for path in cluster.root.rglob("*"):
        mine = path.name in ("agent-netrc", "secret.txt")  # the test's own files
        if path.is_file() and not mine and SECRET.encode() in path.read_bytes():
            found.append(str(path.relative_to(cluster.root)))
    return found


def test_an_index_login_given_to_the_agent_only_resolves_and_never_shows(
    cluster: Cluster, tmp_path: Path
) -> None:
    with serve_index(tmp_path / "index", require_auth=("ada", SECRET)) as index:
        port = index.url.split(":")[2].split("/")[0]
        netrc = tmp_path / "agent-netrc"
        netrc.write_text(f"machine 127.0.0.1 login ada password {SECRET}\n")
        requirements = tmp_path / "requirements.txt"
        requirements.write_text(f"-i {index.url}\nenvd-app==1.0\n")
        cluster.start_daemon()
        cluster.start_agent("bare", ["osx-arm64"])  # no login: the index refuses it
        cluster.start_agent("keyed", ["linux-64"], env={
            "NETRC": str(netrc), "ENVD_PLAIN_HTTP_HOSTS": f"127.0.0.1:{port}",
        })  # fmt: skip
        args = ["--coordinator", cluster.address, "resolve", "-r", str(requirements),
                "--python", "3.11", "--json"]  # fmt: skip
        ok = run_client(*args, "--arch", "linux-64", cwd=tmp_path)
        refused = run_client(*args, "--arch", "osx-arm64", cwd=tmp_path)
        with_secret = tmp_path / "secret.txt"
        with_secret.write_text(f"-i http://ada:{SECRET}@127.0.0.1:{port}/simple\nenvd-app\n")
        in_spec = run_client("--coordinator", cluster.address, "resolve", "-r", str(with_secret),
                             "--python", "3.11", "--arch", "linux-64", cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    (env,) = one_json(ok)["environments"]
    assert env["outcome"] == "resolved", env
    assert [p["filename"] for p in env["packages"]] == ["envd_app-1.0-py3-none-any.whl"]
    assert any(r.startswith("/files/envd_app-1.0") for r in index.requests)
    (failed,) = one_json(refused)["environments"]
    assert failed["outcome"] == "failed", failed
    assert failed["error"]["message"] == (
        f"failed to fetch from PyPI index `{index.url}` for `osx-arm64`: it wants a login the "
        "agent does not have (401 Unauthorized)"
    )
    assert in_spec.returncode == 2
    assert f"`http://ada:***@127.0.0.1:{port}/simple` carries credentials" in in_spec.stderr
    logs = [p.log() for p in cluster.processes]
    assert searched(cluster, ok.stdout, ok.stderr, refused.stdout, refused.stderr,
                    in_spec.stdout, in_spec.stderr, *logs) == []  # fmt: skip


def test_a_native_build_gets_its_backend_from_the_login_protected_index_and_never_shows(
    cluster: Cluster, tmp_path: Path
) -> None:
    sdist = Sdist("envd-pure", "1.0")  # sdist only: built on the agent by `uv build`
    with serve_index(tmp_path / "index", [], [sdist], require_auth=("ada", SECRET)) as index:
        port = index.url.split(":")[2].split("/")[0]
        netrc = tmp_path / "agent-netrc"
        netrc.write_text(f"machine 127.0.0.1 login ada password {SECRET}\n")
        requirements = tmp_path / "requirements.txt"
        requirements.write_text(f"-i {index.url}\nenvd-pure==1.0\n")
        cluster.start_daemon()
        cluster.start_agent("keyed", ["linux-64"], env={
            "NETRC": str(netrc), "ENVD_PLAIN_HTTP_HOSTS": f"127.0.0.1:{port}",
        })  # fmt: skip
        ok = run_client("--coordinator", cluster.address, "resolve", "-r", str(requirements),
                        "--python", "3.11", "--arch", "linux-64", "--json", cwd=tmp_path)  # fmt: skip
        shown = run_client("--coordinator", cluster.address, "show", one_json(ok)["req_id"]
                           if ok.returncode == 0 else "-", "--json", cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    (env,) = one_json(ok)["environments"]
    assert env["outcome"] == "resolved", env
    (package,) = env["packages"]
    assert package["filename"] == "envd_pure-1.0-py3-none-any.whl"
    # the build's backend (setuptools) came from the protected index, with the agent's login
    assert any(r.startswith("/files/setuptools-") for r in index.requests), index.requests
    logs = [p.log() for p in cluster.processes]
    assert searched(cluster, ok.stdout, ok.stderr, shown.stdout, shown.stderr, *logs) == []


def test_the_coordinator_refuses_an_index_outside_its_policy_before_any_job(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.start_daemon(args=["--allow-pypi-index", "https://pypi.corp.example/*"])
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("-i http://127.0.0.1:9/simple\nenvd-app\n")
    out = run_client("--coordinator", cluster.address, "resolve", "-r", str(requirements),
                     "--python", "3.11", "--arch", "linux-64", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(
        "error: PyPI index `http://127.0.0.1:9/simple` is not allowed by this "
        "coordinator: it matches no `--allow-pypi-index` pattern of the coordinator "
        "(`https://pypi.corp.example/*`)"
    ), out.stderr
    corp = tmp_path / "corp.txt"
    corp.write_text("-i https://pypi.corp.example/simple\nenvd-app\n")
    linked = run_client("--coordinator", cluster.address, "resolve", "-r", str(corp),
                        "--find-links", "http://127.0.0.1:9/links/", "--python", "3.11",
                        "--arch", "linux-64", cwd=tmp_path)  # fmt: skip
    assert linked.returncode == 2, linked.stderr
    assert "error: find-links location `http://127.0.0.1:9/links/` is not allowed by this " \
        "coordinator: it matches no `--allow-pypi-index` pattern" in linked.stderr  # fmt: skip
    listed = run_client("--coordinator", cluster.address, "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0 and one_json(listed)["environments"] == [], listed.stdout
