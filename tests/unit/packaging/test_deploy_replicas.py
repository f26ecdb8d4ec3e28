"""deploy/k8s-replicas: the overlay that runs several coordinators on PostgreSQL. Its own
manifests validate against the Kubernetes schemas; its patches, applied here to the base
coordinator, give a Deployment that validates too, whose command the real daemon parses as a
PostgreSQL state; the disruption budget and the autoscaler point at what the base defines."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from envd.daemon.main import parse_args as daemon_args

ROOT = Path(__file__).resolve().parents[3]
OVERLAY = ROOT / "deploy" / "k8s-replicas"
BASE = ROOT / "deploy" / "k8s"


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def patched_coordinator() -> dict[str, Any]:
    """The base coordinator with the overlay's JSON 6902 patch applied (replace and add)."""
    deployment = copy.deepcopy(load(BASE / "coordinator-deployment.yaml"))
    (patch,) = [p for p in load(OVERLAY / "kustomization.yaml")["patches"]
                if p["target"]["kind"] == "Deployment"]  # fmt: skip
    for op in yaml.safe_load(patch["patch"]):
        *parents, last = op["path"].strip("/").split("/")
        node: Any = deployment
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        assert op["op"] in ("replace", "add")
        if op["op"] == "replace":
            assert (node[int(last)] if isinstance(node, list) else node[last]) is not None
        if isinstance(node, list):
            node[int(last)] = op["value"]
        else:
            node[last] = op["value"]
    return deployment


def test_overlay_manifests_and_the_patched_coordinator_validate(tmp_path: Path) -> None:
    resources = load(OVERLAY / "kustomization.yaml")["resources"]
    assert resources[0] == "../k8s"
    files = [str(OVERLAY / name) for name in resources[1:]]
    coordinator = tmp_path / "coordinator.yaml"
    coordinator.write_text(yaml.safe_dump(patched_coordinator()))
    done = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", *files, str(coordinator)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_replicas_share_a_postgresql_state_from_a_secret() -> None:
    deployment = patched_coordinator()
    assert deployment["spec"]["replicas"] >= 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    (env,) = container["env"]
    assert env["valueFrom"]["secretKeyRef"] == {"name": "envd-postgres", "key": "url"}
    secret = load(OVERLAY / "postgres-secret.yaml")
    assert secret["metadata"]["name"] == "envd-postgres" and "url" in secret["stringData"]
    command = [secret["stringData"]["url"] if a == "$(ENVD_STATE_URL)" else a
               for a in container["command"]]  # fmt: skip
    assert command[0] == "envd-daemon"
    args = daemon_args(command[1:])
    assert str(args.state).startswith("postgresql://")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert all("persistentVolumeClaim" not in v for v in volumes)  # no per-pod SQLite


def test_the_budget_and_the_autoscaler_point_at_the_base() -> None:
    pod_labels = load(BASE / "coordinator-deployment.yaml")["spec"]["template"]["metadata"][
        "labels"
    ]
    budget = load(OVERLAY / "coordinator-pdb.yaml")
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    hpa = load(OVERLAY / "agent-linux-64-hpa.yaml")
    target = hpa["spec"]["scaleTargetRef"]["name"]
    assert load(BASE / "agent-linux-64.yaml")["metadata"]["name"] == target
