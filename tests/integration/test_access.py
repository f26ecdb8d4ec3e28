"""Who may do what on a shared coordinator: tokens, roles and namespaces checked before any
servicer runs; the authenticated identity in descriptions and alias history; --use-latest per
request; many movers of one alias; TLS with a CA the test makes; the token file re-read on
SIGHUP."""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from envd.catalog import Catalog
from envd.client.api import EnvdClient
from envd.description import ResolvedBy, SolverInfo, build_description
from envd.errors import (
    AliasConflictError,
    ConfigError,
    CoordinatorUnavailableError,
    EnvdError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from envd.progress import Outcome
from envd.spec import RawDependency, RawSpec, normalize_spec
from envd.store.local import LocalStore
from envd.tokens import TokenInterceptor, channel_credentials, hash_token
from harness import BIN, ChannelServer, Cluster, wait_for
from tls_ca import make_ca

pytestmark = pytest.mark.integration
SECRETS = {"alice": "alice-secret", "bob": "bob-secret", "builder": "agent-secret",
           "ops": "ops-secret"}  # fmt: skip


def write_tokens(path: Path, alice: str = SECRETS["alice"]) -> Path:
    path.write_text(f"""
[[tokens]]
identity = "alice"
role = "client"
namespaces = ["ml_team"]
sha256 = "{hash_token(alice)}"

[[tokens]]
identity = "bob"
role = "client"
namespaces = ["vision"]
sha256 = "{hash_token(SECRETS["bob"])}"

[[tokens]]
identity = "builder"
role = "agent"
sha256 = "{hash_token(SECRETS["builder"])}"

[[tokens]]
identity = "ops"
role = "admin"
sha256 = "{hash_token(SECRETS["ops"])}"
""")
    return path


def as_user(cluster: Cluster, token: str | None, **kwargs: Any) -> EnvdClient:
    interceptors = [TokenInterceptor(token)] if token else []
    return EnvdClient(cluster.address, interceptors=interceptors, **kwargs)


def guarded(cluster: Cluster, *args: str) -> Path:
    tokens = write_tokens(cluster.root / "tokens.toml")
    cluster.start_daemon(args=["--tokens", str(tokens), *args])
    return tokens


def refused(call: Any) -> EnvdError:
    with pytest.raises(EnvdError) as info:
        call()
    return info.value


def test_tokens_roles_and_namespaces_then_identity_and_use_latest(
    cluster: Cluster, channel: ChannelServer
) -> None:
    guarded(cluster)
    with grpc.insecure_channel(cluster.address) as open_channel:  # health needs no token
        health = health_pb2_grpc.HealthStub(open_channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == 1
    with as_user(cluster, None) as anonymous, as_user(cluster, "guess") as guessing:
        missing = refused(anonymous.list_environments)
        assert isinstance(missing, UnauthenticatedError) and missing.message == (
            "`/envd.v1.Environments/ListEnvironments` needs a token: the call carried no "
            "`authorization: Bearer` metadata"
        )
        unknown = refused(guessing.list_environments)
        assert isinstance(unknown, UnauthenticatedError)
        assert unknown.message == "the token is not one the coordinator knows (a typo, or revoked)"
    with as_user(cluster, SECRETS["builder"]) as agent_token:
        wrong_role = refused(agent_token.list_environments)
        assert isinstance(wrong_role, PermissionDeniedError) and wrong_role.message == (
            "`builder` (role `agent`) may not call `/envd.v1.Environments/ListEnvironments`: it "
            "needs role `client` or `admin`"
        )
    # a client token can't register as an agent: the agent says why and exits non-zero
    posing = subprocess.run(
        [str(BIN / "envd-agent"), "--coordinator", cluster.address, "--agent-id", "posing",
         "--cache-dir", str(cluster.root / "cache-posing")],
        env={"ENVD_TOKEN": SECRETS["alice"], "PATH": "/usr/bin:/bin", "ENVD_CONFIG": ""},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert posing.returncode == 7
    assert (
        "error: `alice` (role `client`) may not call `/envd.v1.Agents/Connect`: it needs role "
        "`agent`\n" in posing.stderr
    )
    cluster.start_agent("builder", ["linux-64"], env={"ENVD_TOKEN": SECRETS["builder"]})
    spec = normalize_spec(RawSpec(conda=[RawDependency("python=3.9")], channels=[channel.url]))
    with (
        as_user(cluster, SECRETS["alice"]) as alice,
        as_user(cluster, SECRETS["bob"]) as bob,
        as_user(cluster, SECRETS["ops"]) as ops,
    ):
        first = alice.resolve(spec, ["linux-64"], no_archives=True)
        (event,) = first.events.values()
        assert event.outcome is Outcome.RESOLVED and event.description is not None
        assert event.description["resolved_by"]["user"] == "alice"  # not the local user sent
        check_namespaces(alice, bob, ops, first.req_id, event.full_id)

        def outcome(client: EnvdClient, use_latest: str) -> Outcome | None:
            result = client.resolve(spec, ["linux-64"], no_archives=True, use_latest=use_latest)
            return result.events["linux-64"].outcome

        assert outcome(bob, "any") is Outcome.CACHE_HIT
        assert outcome(alice, "") is Outcome.CACHE_HIT  # the fast path, behind the token check
        assert outcome(alice, "mine") is Outcome.CACHE_HIT
        assert outcome(bob, "mine") is Outcome.RESOLVED  # bob never resolved it
        assert outcome(bob, "carol,alice") is Outcome.CACHE_HIT
        assert outcome(bob, "carol") is Outcome.RESOLVED
        assert outcome(alice, "none") is Outcome.RESOLVED
        bad = refused(lambda: outcome(alice, "mine,"))
        assert isinstance(bad, ConfigError) and bad.message == "invalid --use-latest `mine,`"


def check_namespaces(
    alice: EnvdClient, bob: EnvdClient, ops: EnvdClient, req_id: str, full_id: str
) -> None:
    envs = {"linux-64": full_id}
    alias = alice.set_alias("ml_team/py39", req_id, envs)
    assert [(m.who, m.action) for m in alias.history] == [("alice", "set")]
    foreign = refused(lambda: alice.set_alias("vision/py39", req_id, envs))
    assert isinstance(foreign, PermissionDeniedError) and foreign.message == (
        "`alice` may not write namespace `vision`: its token's namespaces are `ml_team`"
    )
    assert isinstance(refused(lambda: bob.delete_alias("ml_team/py39")), PermissionDeniedError)
    assert bob.get_alias("ml_team/py39") == alias  # any identity may read
    assert bob.get_environment(alias="ml_team/py39")[0]["full_id"] == full_id
    admin_only = refused(lambda: alice.delete_environment(req_id, "linux-64", full_id))
    assert isinstance(admin_only, PermissionDeniedError) and admin_only.message == (
        "`alice` (role `client`) may not delete environments: it needs role `admin`"
    )
    assert isinstance(
        refused(lambda: alice.collect_garbage(dry_run=True, grace=0)), PermissionDeniedError
    )
    assert ops.collect_garbage(dry_run=True, grace=0).removed == ()
    deleted = ops.delete_alias("ml_team/py39")
    assert [(m.who, m.action) for m in deleted.history] == [("alice", "set"), ("ops", "delete")]


def test_many_concurrent_movers_of_one_alias_lose_no_update(cluster: Cluster) -> None:
    guarded(cluster)
    targets = stored_environments(LocalStore(cluster.root / "store"), count=8)
    barrier = threading.Barrier(len(targets))
    outcomes: dict[str, list[tuple[str, str]]] = {"latest": [], "v1": []}

    def mover(full_id: str) -> None:
        with as_user(cluster, SECRETS["alice"]) as alice:
            barrier.wait(10)
            for tag in ("latest", "v1"):
                try:
                    alice.set_alias(f"ml_team/train_env:{tag}", REQ, {"linux-64": full_id})
                    outcomes[tag].append(("won", full_id))
                except AliasConflictError as err:
                    outcomes[tag].append(("lost", err.message))

    threads = [threading.Thread(target=mover, args=(f,)) for f in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with as_user(cluster, SECRETS["bob"]) as reader:
        latest = reader.get_alias("ml_team/train_env")
        v1 = reader.get_alias("ml_team/train_env:v1")
    won = [f for kind, f in outcomes["latest"] if kind == "won"]
    lost = [m for kind, m in outcomes["latest"] if kind == "lost"]
    assert len(won) + len(lost) == len(targets) and won
    assert all("another writer moved it first; it now points at" in m for m in lost)
    # every move that happened is in the history, each from where the one before left it
    assert sorted(m.after.full_ids["linux-64"] for m in latest.history if m.after) == sorted(won)
    assert latest.history[0].before is None
    assert all(
        a.after == b.before for a, b in zip(latest.history, latest.history[1:], strict=False)
    )
    assert latest.target == latest.history[-1].after
    # a version tag: exactly one writer sets it, every other is told
    assert [kind for kind, _ in outcomes["v1"]].count("won") == 1
    assert len(v1.history) == 1


REQ = "c" * 40


def stored_environments(store: LocalStore, count: int) -> list[str]:
    """`count` environments of one req_id, written as an agent would (descriptions)."""
    from envd.description import ResolvedPackage
    from envd.spec import CondaDependency, Spec

    catalog = Catalog(store)
    spec = Spec(conda=(CondaDependency(name="zlib", spec="zlib"),), channels=("conda-forge",))
    full_ids = []
    for i in range(count):
        package = ResolvedPackage(
            kind="conda", name="zlib", version=f"1.{i}", build="h0_0", channel="conda-forge",
            url=f"https://conda.anaconda.org/conda-forge/linux-64/zlib-1.{i}-h0_0.conda",
            filename=f"zlib-1.{i}-h0_0.conda", sha256=f"{i}" * 64, md5=None, size=10,
            subdir="linux-64",
        )  # fmt: skip
        doc = build_description(
            req_id=REQ, platform="linux-64", spec=spec, packages=[package],
            resolved_at=_time(i), resolved_by=ResolvedBy("ada", "a", "h"),
            solver=SolverInfo("rattler", "0.28.0"),
        )  # fmt: skip
        catalog.write_description(doc)
        full_ids.append(doc["full_id"])
    return full_ids


def _time(minute: int) -> Any:
    from datetime import UTC, datetime

    return datetime(2024, 5, 1, 12, minute, tzinfo=UTC)


def test_tls_with_a_test_ca_and_tokens_reloaded_on_sighup(cluster: Cluster, tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "pki")
    tokens = guarded(cluster, "--tls-cert", str(ca.cert), "--tls-key", str(ca.key))
    daemon = cluster.processes[-1]
    trusted = channel_credentials(str(ca.ca), "test")
    with as_user(cluster, SECRETS["alice"], credentials=trusted) as alice:
        assert alice.info(timeout=10).store_url
    with as_user(cluster, SECRETS["alice"], reattach_timeout=0) as plaintext:
        assert isinstance(refused(lambda: plaintext.info(timeout=3)), CoordinatorUnavailableError)
    cluster.start_agent("builder", ["linux-64"], args=["--tls-ca", str(ca.ca)],
                        env={"ENVD_TOKEN": SECRETS["builder"]})  # fmt: skip
    cli = subprocess.run(
        [str(BIN / "envd-client"), "--coordinator", cluster.address, "--tls-ca", str(ca.ca),
         "info", "--json"],
        env={"ENVD_TOKEN": SECRETS["alice"], "PATH": "/usr/bin:/bin", "ENVD_CONFIG": "",
             "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert '"linux-64"' in cli.stdout  # the agent came in over TLS too
    write_tokens(tokens, alice="alice-rotated")
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: "reloaded 4 token(s)" in daemon.log(), 10, "the token file re-read")
    with (
        as_user(cluster, SECRETS["alice"], credentials=trusted) as old,
        as_user(cluster, "alice-rotated", credentials=trusted) as rotated,
    ):
        assert isinstance(refused(old.list_environments), UnauthenticatedError)
        assert rotated.list_environments() == []
