"""The pre-deploy result as schedulers and people read it: the JSON, the table, the report,
where a description is in the store, and the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envd.client.deploy_result import (
    PlatformResult,
    PreDeployResult,
    StepResult,
    description_url,
    failure_report,
    result_table,
    store_root_url,
    write_result,
)
from envd.errors import EnvironmentNotFoundError, InvalidSpecError, UnsatisfiableError

REQ = "1f0e3dad99081f0e3dad99081f0e3dad99081f0e"
FULL = "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12"
URL = f"s3://bucket/envd/envs/{REQ}/linux-64/{FULL}.json"


def result() -> PreDeployResult:
    unsatisfiable = UnsatisfiableError("failed to solve the spec for `linux-64`: no python 3.8",
                                       hint="relax the constraints")  # fmt: skip
    return PreDeployResult(
        "deploy.yaml",
        "nightly",
        "s3://bucket/envd/",
        (
            StepResult("train", None, (PlatformResult("linux-64", REQ, FULL, "cache_hit", URL),)),
            StepResult(
                "broken",
                None,
                (PlatformResult("linux-64", REQ[::-1], "", "failed", "", unsatisfiable),),
            ),
            StepResult(
                "serve",
                "team/serve:v1",
                (PlatformResult("osx-arm64", "", "", "failed", ""),),
                InvalidSpecError("failed to read `env.yml`: bad"),
            ),
        ),
    )


def test_json_maps_step_to_platform_to_full_id_and_description_url() -> None:
    document = result().to_json()
    assert json.loads(json.dumps(document)) == document
    assert document == {
        "schema": "envd-pre-deploy-v1",
        "manifest": "deploy.yaml",
        "name": "nightly",
        "ok": False,
        "store": "s3://bucket/envd",
        "steps": {
            "train": {
                "ok": True,
                "alias": None,
                "platforms": {
                    "linux-64": {
                        "req_id": REQ,
                        "full_id": FULL,
                        "outcome": "cache_hit",
                        "store_url": URL,
                    },
                },
                "error": None,
            },
            "broken": {
                "ok": False,
                "alias": None,
                "platforms": {
                    "linux-64": {
                        "req_id": REQ[::-1],
                        "full_id": None,
                        "outcome": "failed",
                        "store_url": None,
                        "error": {
                            "reference": "E201",
                            "message": "failed to solve the spec for `linux-64`: no python 3.8",
                            "hint": "relax the constraints",
                        },
                    },
                },
                "error": {
                    "reference": "E201",
                    "message": "failed to solve the spec for `linux-64`: no python 3.8",
                    "hint": "relax the constraints",
                },
            },
            "serve": {
                "ok": False,
                "alias": "team/serve:v1",
                "platforms": {
                    "osx-arm64": {
                        "req_id": None,
                        "full_id": None,
                        "outcome": "failed",
                        "store_url": None,
                    },
                },
                "error": {
                    "reference": "E100",
                    "message": "failed to read `env.yml`: bad",
                    "hint": "",
                },
            },
        },
        "failed": [
            {"step": "broken", "error": document["steps"]["broken"]["error"]},
            {"step": "serve", "error": document["steps"]["serve"]["error"]},
        ],
    }


def test_table_and_report_name_every_failed_step() -> None:
    assert result_table(result()) == (
        "STEP    PLATFORM   REQ_ID        FULL_ID       OUTCOME\n"
        f"train   linux-64   {REQ[:12]}  {FULL[:12]}  cache_hit\n"
        f"broken  linux-64   {REQ[::-1][:12]}  -             failed\n"
        "serve   osx-arm64  -             -             failed\n"
    )
    assert failure_report(result()) == (
        "2 of 3 step(s) cannot be deployed:\n"
        "  broken on linux-64: E201 failed to solve the spec for `linux-64`: no python 3.8\n"
        "    hint: relax the constraints\n"
        "  serve: E100 failed to read `env.yml`: bad\n"
    )


def test_exit_code_is_the_first_failed_steps() -> None:
    done = result()
    assert done.exit_code == 3  # unsatisfiable, as `resolve` exits
    ok = PreDeployResult("m", "", "/s", done.steps[:1])
    assert (ok.ok, ok.exit_code, failure_report(ok)) == (True, 0, "")
    missing = EnvironmentNotFoundError("alias `a/b:latest` names no environment on `osx-64`")
    alias_step = StepResult("s", "a/b:latest", (PlatformResult("osx-64", REQ, "", "failed", "",
                                                               missing),))  # fmt: skip
    assert PreDeployResult("m", "", "/s", (alias_step, *done.steps)).exit_code == 4


def test_secrets_in_urls_are_masked() -> None:
    leaky = PreDeployResult("m", "", "https://user:hunter2@store.example/envd", ())
    assert "hunter2" not in json.dumps(leaky.to_json())


@pytest.mark.parametrize(
    ("store", "root"),
    [
        ("/srv/envd/store", "file:///srv/envd/store"),
        ("/srv/envd store/", "file:///srv/envd%20store"),
        ("file:///srv/envd/", "file:///srv/envd"),
        ("s3://bucket", "s3://bucket"),
        ("gs://bucket/prefix/", "gs://bucket/prefix"),
        ("relative/store", "relative/store"),  # the daemon's folder: left as it said it
    ],
)
def test_store_root_url(store: str, root: str) -> None:
    assert store_root_url(store) == root
    assert (
        description_url(store, REQ, "linux-64", FULL) == f"{root}/envs/{REQ}/linux-64/{FULL}.json"
    )


def test_the_description_url_is_where_the_store_keeps_it(tmp_path: Path) -> None:
    from urllib.parse import urlsplit

    from envd.store.local import LocalStore

    store = LocalStore(tmp_path / "store")
    key = f"envs/{REQ}/linux-64/{FULL}.json"
    store.put_if_absent(key, b"{}")
    assert Path(urlsplit(description_url(store.url, REQ, "linux-64", FULL)).path).is_file()


def test_the_result_file_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "out" / "environments.json"
    write_result(result(), path)
    assert json.loads(path.read_text()) == result().to_json()
    assert [p.name for p in path.parent.iterdir()] == ["environments.json"]
