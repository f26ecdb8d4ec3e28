"""Metrics and JSON logs of a real envd-daemon and envd-agent, and a real Prometheus scraping
them with the files in deploy/: its config and rules pass promtool, and every expression of the
Grafana dashboard and the alert rules evaluates and names only metrics envd exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from envd.client.api import EnvdClient
from envd.progress import Outcome, ResolveEvent, Stage
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec
from harness import ROOT, ChannelServer, Cluster, free_port, serve_channel, wait_for

pytestmark = pytest.mark.integration
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
ARCHIVES_DEMO = ROOT / "examples" / "channels" / "archives-demo"
LINUX = "linux-64"
# histogram series and counters: what a delta can be asserted on exactly
COUNTED = ("_total", "_count")


@dataclass
class Observed:
    cluster: Cluster
    daemon_metrics: str  # HOST:PORT
    agent_metrics: str
    archives: ChannelServer

    def scrape(self, address: str) -> dict[str, float]:
        text = urllib.request.urlopen(f"http://{address}/metrics", timeout=10).read().decode()
        return {
            _key(sample.name, sample.labels): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


def _key(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    """One daemon and one linux-64 agent, metrics on and JSON logs, for the whole module."""
    cluster = Cluster(tmp_path_factory.mktemp("observed"))
    daemon_metrics = f"127.0.0.1:{free_port()}"
    agent_metrics = f"127.0.0.1:{free_port()}"
    try:
        with serve_channel(ARCHIVES_DEMO) as archives:
            cluster.start_daemon(args=["--metrics-listen", daemon_metrics, "--log-format", "json"])
            cluster.start_agent(
                "agent-m", [LINUX],
                args=["--metrics-listen", agent_metrics, "--log-format", "json"],
            )  # fmt: skip
            yield Observed(cluster, daemon_metrics, agent_metrics, archives)
    finally:
        cluster.stop()


def spec(channel: str, dependency: str) -> Spec:
    return normalize_spec(RawSpec(conda=[RawDependency(dependency)], channels=[channel]))


def deltas(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if key.split("{")[0].endswith(COUNTED) and after[key] != before.get(key, 0.0)
    }


def test_each_outcome_moves_its_counters_by_exactly_what_happened(
    observed: Observed, channel: ChannelServer
) -> None:
    daemon_before = observed.scrape(observed.daemon_metrics)
    agent_before = observed.scrape(observed.agent_metrics)
    python = spec(channel.url, "python=3.9")
    accepted = threading.Event()
    results: list[Any] = []

    def first(event: ResolveEvent) -> None:
        if event.stage is Stage.ACCEPTED:
            accepted.set()

    def resolve_first() -> None:
        with EnvdClient(observed.cluster.address) as client:
            results.append(client.resolve(python, [LINUX], no_archives=True, on_event=first))

    channel.set_delay(1.5)  # slow repodata keeps the first job in flight while the second joins
    try:
        thread = threading.Thread(target=resolve_first)
        thread.start()
        assert accepted.wait(30)
        with EnvdClient(observed.cluster.address) as client:
            joined = client.resolve(python, [LINUX], no_archives=True)
        thread.join(60)
    finally:
        channel.set_delay(0)
    with EnvdClient(observed.cluster.address) as client:
        hit = client.resolve(python, [LINUX], no_archives=True)
        demo = client.resolve(spec(observed.archives.url, "envd-demo-hello"), [LINUX])
        failed = client.resolve(spec(channel.url, "no-such-package"), [LINUX], no_archives=True)
    outcomes = [r.events[LINUX].outcome for r in (results[0], joined, hit, demo, failed)]
    assert outcomes == [Outcome.RESOLVED, Outcome.DEDUP, Outcome.CACHE_HIT, Outcome.RESOLVED,
                        Outcome.FAILED]  # fmt: skip

    store = observed.cluster.root / "store" / "pkgs"
    stored = {p.name: p.stat().st_size for p in store.rglob("*") if p.is_file()}
    served = {p.name: p.stat().st_size for p in (ARCHIVES_DEMO / "noarch").iterdir()
              if p.suffix != ".json"}  # fmt: skip
    resolve = "method=Resolve,service=envd.v1.Environments"
    assert deltas(daemon_before, observed.scrape(observed.daemon_metrics)) == {
        **{f"envd_requests_total{{outcome={o},platform={LINUX}}}": n
           for o, n in (("resolved", 2), ("dedup", 1), ("cache_hit", 1), ("failed", 1))},
        **{f"envd_request_duration_seconds_count{{outcome={o},platform={LINUX}}}": n
           for o, n in (("resolved", 2), ("dedup", 1), ("cache_hit", 1), ("failed", 1))},
        f"envd_queue_wait_seconds_count{{platform={LINUX}}}": 3,
        f"envd_jobs_finished_total{{platform={LINUX},status=done}}": 2,
        f"envd_jobs_finished_total{{platform={LINUX},status=failed}}": 1,
        f"envd_grpc_server_started_total{{{resolve}}}": 5,
        f"envd_grpc_server_handled_total{{code=OK,{resolve}}}": 5,
        f"envd_grpc_server_handling_seconds_count{{{resolve}}}": 5,
    }  # fmt: skip
    assert deltas(agent_before, observed.scrape(observed.agent_metrics)) == {
        f"envd_solve_duration_seconds_count{{platform={LINUX}}}": 2,  # the failed one found none
        f"envd_build_duration_seconds_count{{outcome=resolved,platform={LINUX}}}": 2,
        f"envd_build_duration_seconds_count{{outcome=failed,platform={LINUX}}}": 1,
        f"envd_builds_total{{outcome=resolved,platform={LINUX}}}": 2,
        f"envd_builds_total{{outcome=failed,platform={LINUX}}}": 1,
        "envd_fetch_duration_seconds_count{kind=tar_bz2}": 1,
        "envd_fetch_duration_seconds_count{kind=conda}": 1,
        "envd_fetched_bytes_total{backend=http}": sum(served.values()),
        "envd_transmute_duration_seconds_count{}": 1,
        "envd_transmuted_bytes_total{}": stored["cph_test_data-0.0.1-0.conda"],
        "envd_upload_duration_seconds_count{backend=local,kind=tar_bz2}": 1,
        "envd_upload_duration_seconds_count{backend=local,kind=conda}": 2,
        "envd_uploaded_bytes_total{backend=local}": sum(stored.values()),
    }  # fmt: skip
    now = observed.scrape(observed.daemon_metrics)
    live = ("envd_queue_depth", "envd_jobs_in_flight", "envd_agents_connected")
    assert [now[f"{name}{{platform={LINUX}}}"] for name in live] == [0, 0, 1]
    _check_json_logs(observed.cluster, results[0].events[LINUX], demo.events[LINUX])


def _check_json_logs(cluster: Cluster, event: ResolveEvent, archived: ResolveEvent) -> None:
    """Every line is one JSON object; every line about the job, on the coordinator and on the
    agent, names its job_id, req_id, platform and (once leased) agent; so do the lines of the
    job with archives that the agent's archive threads write."""
    job = {"job_id": event.job_id, "req_id": event.req_id, "platform": LINUX}
    logs = {p.name: [json.loads(line) for line in p.log().splitlines()] for p in cluster.processes}
    for document in logs["daemon-0"] + logs["agent-m"]:
        if event.job_id in document["message"]:
            assert {k: document.get(k) for k in job} == job, document
    daemon, agent = ([d for d in logs[name] if d.get("job_id") == event.job_id]
                     for name in ("daemon-0", "agent-m"))  # fmt: skip
    assert [d["message"].split()[0] for d in daemon] == ["new", "leased", "resolved"]
    assert all(d.get("agent") == "agent-m" for d in daemon[1:] + agent)
    assert any("solving" in d["message"] for d in agent)  # a line that names no job id
    threads = {d["message"].split()[0] for d in logs["agent-m"]
               if d.get("job_id") == archived.job_id and d.get("agent") == "agent-m"}  # fmt: skip
    assert {"fetched", "uploaded", "transmuted"} <= threads


# ---- a real Prometheus over deploy/prometheus and deploy/grafana ----


@pytest.fixture(scope="module")
def prometheus() -> tuple[str, str]:
    """`prometheus` and `promtool`, installed from Debian once if missing (skipped, with the
    reason, only where that cannot be done)."""
    found = shutil.which("prometheus"), shutil.which("promtool")
    if found[0] and found[1]:
        return found[0], found[1]
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("Prometheus is not installed and cannot be here: Debian's `prometheus` "
                    "package needs apt-get as root")  # fmt: skip
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "prometheus"],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"failed to install Prometheus: `{' '.join(argv)}`: {done.stderr[-400:]}")
    binaries = shutil.which("prometheus"), shutil.which("promtool")
    assert binaries[0] and binaries[1], "apt-get installed `prometheus` but not its binaries"
    return binaries[0], binaries[1]


def dashboard_expressions() -> list[str]:
    """Every PromQL expression of the dashboard, Grafana's variables filled in."""
    dashboard = json.loads((DEPLOY / "grafana" / "envd.json").read_text())
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":  # label_values(METRIC, LABEL): its series
            found.append(re.sub(r"label_values\((\w+), *\w+\)", r"\1", variable["query"]["query"]))
    filled = [e.replace("$__rate_interval", "1m").replace("$platform", ".*") for e in found]
    assert not [e for e in filled if "$" in e], "a Grafana variable the test does not fill"
    return filled


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def exported_names(observed: Observed) -> set[str]:
    """The series names envd exports (families listed with no sample yet included)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    names = {"up"}  # Prometheus's own, per target
    for address in (observed.daemon_metrics, observed.agent_metrics):
        text = urllib.request.urlopen(f"http://{address}/metrics", timeout=10).read().decode()
        for family in text_string_to_metric_families(text):
            names.update(family.name + suffix for suffix in suffixes[family.type])
    return names


@pytest.mark.timeout(900)  # a first install of Debian's prometheus included
def test_prometheus_scrapes_envd_and_evaluates_every_dashboard_and_alert_expression(
    observed: Observed, prometheus: tuple[str, str], tmp_path: Path
) -> None:
    server, promtool = prometheus
    config_file = DEPLOY / "prometheus" / "prometheus.yml"
    for check in (["check", "config", str(config_file)], ["check", "rules", str(RULES)]):
        done = subprocess.run([promtool, *check], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load(config_file.read_text())
    config["global"].update(scrape_interval="500ms", evaluation_interval="500ms")
    config["rule_files"] = [str(RULES)]
    config.pop("alerting")
    targets = {"envd-daemon": observed.daemon_metrics, "envd-agent": observed.agent_metrics}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{free_port()}"
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [server, f"--config.file={tmp_path / 'prometheus.yml'}", f"--web.listen-address={address}",
         f"--storage.tsdb.path={tmp_path / 'data'}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        api = PrometheusApi(f"http://{address}")
        wait_for(api.ready, 60, "Prometheus ready")
        # a few scrapes of each target, so rate() and deriv() have points to work on
        wait_for(lambda: api.scrapes() >= 2, 60, "two scrapes of both envd targets")
        with EnvdClient(observed.cluster.address) as client:  # traffic inside the windows
            # (a spec and no archives of its own: the other test's counts stay exact in any order)
            client.resolve(spec(observed.archives.url, "cph_test_data"), [LINUX], no_archives=True)
        wait_for(lambda: api.scrapes() >= 4, 60, "two more scrapes")
        names = exported_names(observed)
        ingested = set(api.get("/api/v1/label/__name__/values"))
        assert {"envd_requests_total", "envd_builds_total", "envd_queue_depth"} <= ingested
        for expression in [*dashboard_expressions(), *(rule["expr"] for rule in rules())]:
            result = api.get("/api/v1/query", query=expression)
            assert result["resultType"] in ("vector", "scalar", "matrix"), expression
            unknown = set(re.findall(r"\benvd_\w+", expression)) - names
            assert not unknown, f"{expression} names metrics envd does not export: {unknown}"
        wait_for(lambda: api.rules_evaluated(), 30, "every rule evaluated once")
        loaded = [r for g in api.get("/api/v1/rules")["groups"] for r in g["rules"]]
        assert {r["name"] for r in loaded} == {r["alert"] for r in rules()}
        broken = [(r["name"], r.get("lastError")) for r in loaded if r["health"] != "ok"]
        assert broken == []
    finally:
        process.terminate()
        process.wait(30)
        log.close()
    probe = subprocess.run(
        [sys.executable, "-m", "envd.daemon.health_probe", observed.cluster.address],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert (probe.returncode, probe.stdout) == (0, "SERVING\n")


class PrometheusApi:
    def __init__(self, base: str) -> None:
        self.base = base

    def ready(self) -> bool:
        try:
            status: int = urllib.request.urlopen(f"{self.base}/-/ready", timeout=2).status
        except OSError:
            return False
        return status == 200

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        document = json.loads(urllib.request.urlopen(url, timeout=10).read())
        assert document["status"] == "success", document
        return document["data"]

    def scrapes(self) -> float:
        """Successful scrapes of the target scraped least so far."""
        query = 'min(sum_over_time(up{job=~"envd-daemon|envd-agent"}[5m])) and count(up) == 2'
        result = self.get("/api/v1/query", query=query)["result"]
        return float(result[0]["value"][1]) if result else 0.0

    def rules_evaluated(self) -> bool:
        rules = [r for g in self.get("/api/v1/rules")["groups"] for r in g["rules"]]
        return bool(rules) and all(not r["lastEvaluation"].startswith("0001") for r in rules)
