"""deploy/scheduler/: the Argo WorkflowTemplate, the Airflow DAG and the GitHub Actions workflow
have the shape their schedulers need, agree with the manifest and with deploy/k8s, and the
pre-deploy command each contains runs for real (its coordinator and manifest swapped for a
test daemon and agent, and a small manifest over the bundled loopback channel).

The DAG is parsed with `ast` always; set ENVD_TEST_AIRFLOW_PYTHON to a Python that has
apache-airflow (a throwaway venv: it is too heavy for the test extra) and it is also imported
by Airflow's DagBag and run by `dag.test()` against the test daemon."""

from __future__ import annotations

import ast
import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from envd.client.manifest import read_manifest
from harness import ROOT, ChannelServer, Cluster, serve_channel

SCHEDULER = ROOT / "deploy" / "scheduler"
K8S = ROOT / "deploy" / "k8s"
BIN = Path(sys.executable).parent
DEMO_CHANNEL = ROOT / "examples" / "channels" / "archives-demo"
HOOK_STEP, HOOK_PLATFORM = "train", "linux-64"  # the step and platform the examples deploy


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((SCHEDULER / name).read_text())
    return document


def argo() -> dict[str, Any]:
    return load("argo-workflowtemplate.yaml")


def workflow() -> dict[str, Any]:
    return load("github-actions-deploy.yml")


def templates() -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in argo()["spec"]["templates"]}


def argo_hook() -> dict[str, Any]:
    """The template of the entrypoint's first step."""
    entry = templates()[argo()["spec"]["entrypoint"]]
    first: dict[str, Any] = templates()[entry["steps"][0][0]["template"]]
    return first


def gh_hook_step() -> dict[str, Any]:
    steps: list[dict[str, Any]] = workflow()["jobs"]["envd-pre-deploy"]["steps"]
    (step,) = [s for s in steps if "envd-client pre-deploy" in s.get("run", "")]
    return step


def dag_tree() -> ast.Module:
    return ast.parse((SCHEDULER / "airflow_dag.py").read_text())


def dag_constant(name: str) -> Any:
    for node in dag_tree().body:
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == [name]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"no constant `{name}` in airflow_dag.py")


def dag_operators() -> dict[str, ast.Call]:
    """Each `X = BashOperator(...)` / `X = task(...)` call of the DAG, by variable name."""
    calls = {}
    for node in ast.walk(dag_tree()):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            calls[ast.unparse(node.targets[0])] = node.value
    return calls


def test_the_example_manifest_is_valid_and_has_the_step_the_examples_deploy() -> None:
    manifest = read_manifest(SCHEDULER / "manifest.yaml")
    steps = {s.name: s for s in manifest.steps}
    assert list(steps) == ["train", "evaluate", "serve"]
    assert HOOK_PLATFORM in steps[HOOK_STEP].platforms
    assert steps["serve"].alias == "ml_team/serve:v1"


def test_argo_workflowtemplate_runs_the_hook_first_and_passes_its_result_on() -> None:
    doc = argo()
    assert (doc["apiVersion"], doc["kind"]) == ("argoproj.io/v1alpha1", "WorkflowTemplate")
    named = templates()
    entry = named[doc["spec"]["entrypoint"]]
    groups = entry["steps"]
    assert all(step["template"] in named for group in groups for step in group)
    hook = argo_hook()
    assert [s["name"] for s in groups[0]] == ["envd-pre-deploy"]  # alone, before any deploy
    container = hook["container"]
    assert container["command"] == ["envd-client"]
    args = container["args"]
    assert args[0] == "pre-deploy" and args[2] == "--output"
    source = hook["inputs"]["artifacts"][0]
    assert args[1].startswith(source["path"] + "/") and args[1].endswith("/manifest.yaml")
    (output,) = hook["outputs"]["parameters"]
    assert output["valueFrom"]["path"] == args[3]
    passed = f"{{{{steps.envd-pre-deploy.outputs.parameters.{output['name']}}}}}"
    later = [p["value"] for g in groups[1:] for s in g for p in s["arguments"]["parameters"]]
    assert passed in later
    # the coordinator and image of deploy/k8s
    service = yaml.safe_load((K8S / "coordinator-service.yaml").read_text())
    namespace = yaml.safe_load((K8S / "namespace.yaml").read_text())["metadata"]["name"]
    port = {p["name"]: p["port"] for p in service["spec"]["ports"]}["grpc"]
    address = f"{service['metadata']['name']}.{namespace}.svc.cluster.local:{port}"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ENVD_COORDINATOR"] == address
    coordinator = yaml.safe_load((K8S / "coordinator-deployment.yaml").read_text())
    image = coordinator["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container["image"] == image == named["deploy-step"]["script"]["image"]


def test_github_workflow_validates_and_deploys_only_after_the_hook() -> None:
    done = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
         str(SCHEDULER / "github-actions-deploy.yml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    jobs = workflow()["jobs"]
    assert jobs["deploy"]["needs"] == "envd-pre-deploy"
    hook = jobs["envd-pre-deploy"]
    assert hook["env"]["ENVD_COORDINATOR"] == "${{ vars.ENVD_COORDINATOR }}"
    assert shlex.split(gh_hook_step()["run"])[:3] == ["envd-client", "pre-deploy",
                                                      "deploy/scheduler/manifest.yaml"]  # fmt: skip
    assert hook["outputs"][HOOK_STEP] == f"${{{{ steps.ids.outputs.{HOOK_STEP} }}}}"
    created = [s["run"] for s in jobs["deploy"]["steps"] if "envd-client create" in s["run"]]
    assert created == [f'envd-client create "${{{{ needs.envd-pre-deploy.outputs.{HOOK_STEP} }}}}" '
                       f"--arch {HOOK_PLATFORM} --prefix ./env"]  # fmt: skip


def test_airflow_dags_first_task_runs_the_hook() -> None:
    """Parsed, not imported: what `airflow` itself would find is checked with Airflow below."""
    operators = dag_operators()
    hook = operators["pre_deploy"]
    assert ast.unparse(hook.func) == "BashOperator"
    keywords = {k.arg: ast.unparse(k.value) for k in hook.keywords}
    assert keywords["task_id"] == "'envd_pre_deploy'" and keywords["bash_command"] == "PRE_DEPLOY"
    command = dag_constant("PRE_DEPLOY")
    assert shlex.split(command)[:2] == ["envd-client", "pre-deploy"]
    chains = [ast.unparse(n) for n in ast.walk(dag_tree())
              if isinstance(n, ast.Expr) and isinstance(n.value, ast.BinOp)]  # fmt: skip
    assert chains == ["pre_deploy >> train_id >> deploy_train"]


# --- the commands, run for real against a test daemon and agent -------------------------


@pytest.fixture
def daemon(cluster: Cluster) -> Iterator[tuple[Cluster, ChannelServer]]:
    """A daemon and a linux-64 agent, and the demo channel (real archives) over loopback."""
    cluster.start_daemon()
    cluster.start_agent("agent", [HOOK_PLATFORM])
    with serve_channel(DEMO_CHANNEL) as channel:
        yield cluster, channel


def small_manifest(folder: Path, channel: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.yaml"
    path.write_text(textwrap.dedent(f"""\
        version: 1
        steps:
          - name: {HOOK_STEP}
            platforms: [{HOOK_PLATFORM}]
            environment:
              channels: ["{channel}"]
              packages: [envd-demo-hello]
        """))  # fmt: skip
    return path


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ENVD_")}
    environ |= {"ENVD_CONFIG": "", "ENVD_HOME": str(cwd / "home"),
                "PATH": f"{BIN}{os.pathsep}{environ.get('PATH', '')}", **env}  # fmt: skip
    return subprocess.run(argv, env=environ, cwd=cwd, capture_output=True, text=True, timeout=120)


def ready(result_path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(result_path.read_text())
    assert result["ok"] is True, result
    entry = result["steps"][HOOK_STEP]["platforms"][HOOK_PLATFORM]
    assert entry["outcome"] in ("resolved", "cache_hit") and len(entry["full_id"]) == 40
    return result


def env_id(result: dict[str, Any]) -> str:
    entry = result["steps"][HOOK_STEP]["platforms"][HOOK_PLATFORM]
    return f"{entry['req_id']}:{entry['full_id']}"


def test_argo_hook_and_deploy_step_run_against_a_test_daemon(
    daemon: tuple[Cluster, ChannelServer], tmp_path: Path
) -> None:
    cluster, channel = daemon
    container = argo_hook()["container"]
    manifest = small_manifest(tmp_path / "src", channel.url)
    output = tmp_path / "environments.json"
    args = [str(manifest) if a == container["args"][1] else str(output)
            if a == container["args"][3] else a for a in container["args"]]  # fmt: skip
    done = run([*container["command"], *args], {"ENVD_COORDINATOR": cluster.address}, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split() == ["STEP", "PLATFORM", "REQ_ID", "FULL_ID",
                                                   "OUTCOME"]  # fmt: skip
    result = ready(output)
    # the deploy step's script, with Argo's substitutions made, creates the environment
    script = templates()["deploy-step"]["script"]
    source = script["source"].replace("{{inputs.parameters.step}}", HOOK_STEP)
    source = source.replace("/tmp/env", str(tmp_path / "env"))
    env = {"ENVD_COORDINATOR": cluster.address, "ENVIRONMENTS": output.read_text()}
    deployed = run([*script["command"], "-c", source], env, tmp_path)
    assert deployed.returncode == 0, deployed.stderr
    assert deployed.stdout.endswith(f"deployed {HOOK_STEP} in {tmp_path / 'env'}\n")
    meta = json.loads(
        next((tmp_path / "env" / "conda-meta").glob("envd-demo-hello-*.json")).read_text()
    )
    assert meta["name"] == "envd-demo-hello" and env_id(result)


def test_github_hook_and_ids_step_run_against_a_test_daemon(
    daemon: tuple[Cluster, ChannelServer], tmp_path: Path
) -> None:
    cluster, channel = daemon
    small_manifest(tmp_path / "deploy" / "scheduler", channel.url)  # where the checkout has it
    env = {"ENVD_COORDINATOR": cluster.address}
    done = run(["bash", "-c", gh_hook_step()["run"]], env, tmp_path)
    assert done.returncode == 0, done.stderr
    result = ready(tmp_path / "envd-environments.json")
    (ids,) = [s for s in workflow()["jobs"]["envd-pre-deploy"]["steps"] if s.get("id") == "ids"]
    outputs = tmp_path / "github-output"
    assert (
        run(["bash", "-c", ids["run"]], {"GITHUB_OUTPUT": str(outputs)}, tmp_path).returncode == 0
    )
    assert outputs.read_text() == f"{HOOK_STEP}={env_id(result)}\n"


def test_airflow_hook_command_runs_against_a_test_daemon(
    daemon: tuple[Cluster, ChannelServer], tmp_path: Path
) -> None:
    cluster, channel = daemon
    output = tmp_path / "environments.json"
    env = {"ENVD_COORDINATOR": cluster.address, "ENVD_RESULT": str(output),
           "ENVD_MANIFEST": str(small_manifest(tmp_path / "dags", channel.url))}  # fmt: skip
    done = run(["bash", "-c", dag_constant("PRE_DEPLOY")], env, tmp_path)
    assert done.returncode == 0, done.stderr
    # the XCom value is the last line: the whole result on one line
    assert json.loads(done.stdout.splitlines()[-1]) == ready(output)


def airflow_python() -> str:
    python = os.environ.get("ENVD_TEST_AIRFLOW_PYTHON", "")
    if not python:
        pytest.skip("set ENVD_TEST_AIRFLOW_PYTHON to a Python with apache-airflow to import and "
                    "run the DAG with Airflow (the DAG is parsed with `ast` above)")  # fmt: skip
    return python


AIRFLOW_PROBE = """
import json, shutil, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags["envd_deploy"]
found = {"errors": {str(k): v for k, v in bag.import_errors.items()},
         "tasks": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
         "roots": [t.task_id for t in dag.roots],
         "command": dag.get_task("envd_pre_deploy").bash_command, "states": []}
for manifest in sys.argv[2:]:  # each run's manifest, copied to where the DAG reads it
    shutil.copy(manifest, sys.argv[1].replace("airflow_dag.py", "manifest.yaml"))
    run = dag.test()
    found["states"].append({ti.task_id: str(ti.state) for ti in run.get_task_instances()})
print(json.dumps(found))
"""


@pytest.mark.timeout(300)  # Airflow's database migration and two DAG runs
def test_airflow_imports_and_runs_the_dag_against_a_test_daemon(
    daemon: tuple[Cluster, ChannelServer], tmp_path: Path
) -> None:
    python = airflow_python()
    cluster, channel = daemon
    dags = tmp_path / "dags"
    ready_manifest = small_manifest(tmp_path / "ready", channel.url)
    broken = tmp_path / "broken.yaml"
    broken.write_text(ready_manifest.read_text().replace("envd-demo-hello", "no-such-package"))
    dags.mkdir()
    shutil.copy(SCHEDULER / "airflow_dag.py", dags)
    env = {"AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "ENVD_COORDINATOR": cluster.address}  # fmt: skip
    airflow = str(Path(python).parent / "airflow")
    for command in (["db", "migrate"], ["dags", "reserialize"]):  # dag.test() needs both
        done = run([airflow, *command], env, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
    probe = [python, "-c", AIRFLOW_PROBE, str(dags / "airflow_dag.py"), str(ready_manifest),
             str(broken)]  # fmt: skip
    done = run(probe, env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["errors"] == {}
    assert found["roots"] == ["envd_pre_deploy"]
    assert found["tasks"] == {"envd_pre_deploy": [], "environment_id": ["envd_pre_deploy"],
                              "deploy_train": ["environment_id"]}  # fmt: skip
    assert found["command"] == dag_constant("PRE_DEPLOY")
    assert found["states"] == [
        {"envd_pre_deploy": "success", "environment_id": "success", "deploy_train": "success"},
        # a step that can't be resolved: the hook fails and nothing is deployed
        {"envd_pre_deploy": "failed", "environment_id": "upstream_failed",
         "deploy_train": "upstream_failed"},
    ]  # fmt: skip
