"""Airflow: a deployment DAG whose first task runs envd's pre-deploy hook.

`envd_pre_deploy` resolves every environment of the manifest beside this file through the
coordinator (or confirms it, for an alias) and fails, naming each step that can't be resolved,
before any deploy task runs. Its last line of output, the JSON result (step → platform →
req_id, full_id, store_url) on one line, is its XCom value, from which each deploy task takes
its environment. Put this file, manifest.yaml and envs/ in the DAGs folder; the workers need
`envd-client` (the envd package) and ENVD_COORDINATOR (and ENVD_TOKEN with `--tokens`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pendulum

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.decorators import task
    from airflow.operators.bash import BashOperator

# The hook: a non-zero exit fails the task and so the DAG run; the result's one-line JSON last.
PRE_DEPLOY = (
    'envd-client pre-deploy "$ENVD_MANIFEST" --output "$ENVD_RESULT" '
    '&& python3 -m json.tool --compact "$ENVD_RESULT"'
)
HOOK_ENV = {
    "ENVD_COORDINATOR": os.environ.get(
        "ENVD_COORDINATOR", "envd-coordinator.envd.svc.cluster.local:50051"
    ),
    "ENVD_MANIFEST": str(Path(__file__).with_name("manifest.yaml")),
    "ENVD_RESULT": "/tmp/envd-environments-{{ run_id }}.json",
}


@task
def environment_id(result: str, step: str, platform: str) -> str:
    """`req_id:full_id` of a step's environment on a platform, from the hook's result."""
    entry = json.loads(result)["steps"][step]["platforms"][platform]
    return f"{entry['req_id']}:{entry['full_id']}"


with DAG(
    dag_id="envd_deploy",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["envd"],
) as dag:
    pre_deploy = BashOperator(
        task_id="envd_pre_deploy",
        bash_command=PRE_DEPLOY,
        env=HOOK_ENV,
        append_env=True,  # PATH and the rest of the worker's environment
    )
    train_id = environment_id(pre_deploy.output, "train", "linux-64")
    deploy_train = BashOperator(
        task_id="deploy_train",
        # the environment, from the store's cached archives; the step then runs in it
        bash_command=(
            'envd-client create "$ENVD_ID" --arch linux-64 --prefix "$ENVD_PREFIX" '
            '&& echo "deployed train in $ENVD_PREFIX"'
        ),
        env={
            "ENVD_ID": train_id,
            "ENVD_PREFIX": "/tmp/envd-train-{{ run_id }}",
            "ENVD_COORDINATOR": HOOK_ENV["ENVD_COORDINATOR"],
        },
        append_env=True,
    )
    pre_deploy >> train_id >> deploy_train
