"""The client believes only complete answers: a forged coordinator (a loopback `grpc.aio` server
made here, answering `GetInfo` and `Resolve` with the events each case gives) never makes
`envd-client resolve` exit 0 without an environment."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from test_cli import normalized, one_json, run_client

import envd
from envd.description import ResolvedBy, ResolvedPackage, SolverInfo, build_description
from envd.progress import Outcome, ResolveEvent, Stage
from envd.spec import CondaDependency, Spec
from envd.v1 import environments_pb2 as pb
from envd.wire import event_to_pb

pytestmark = pytest.mark.e2e
REQ_ID = "0123456789abcdef0123456789abcdef01234567"
JOB = "job-" + "0" * 32
ARGS = ("resolve", "-c", "conda-forge", "-p", "python", "--arch", "linux-64")


def description(platform: str = "linux-64") -> dict[str, Any]:
    package = ResolvedPackage(
        kind="conda", name="python", version="3.12.0", build="h0_0", channel="conda-forge",
        url="https://conda.anaconda.org/conda-forge/linux-64/python-3.12.0-h0_0.conda",
        filename="python-3.12.0-h0_0.conda", sha256="a" * 64, md5=None, size=1, subdir=platform,
    )  # fmt: skip
    return build_description(
        req_id=REQ_ID, platform=platform, spec=Spec(conda=(CondaDependency("python", "python"),),
        channels=("conda-forge",)), packages=[package],
        resolved_at=datetime(2024, 5, 1, tzinfo=UTC),
        resolved_by=ResolvedBy(user="ada", agent="agent-1", host="build-01"),
        solver=SolverInfo(name="rattler", version="0.28.0"),
    )  # fmt: skip


def event(stage: Stage, outcome: Outcome | None = None, **fields: Any) -> pb.ResolveEvent:
    return event_to_pb(ResolveEvent(REQ_ID, "linux-64", stage, JOB, outcome, **fields))


ACCEPTED = event(Stage.ACCEPTED, Outcome.RESOLVED)
OTHER = description("osx-arm64")  # a valid description, of another environment
NOT_JSON = event(Stage.DONE, Outcome.RESOLVED, full_id=OTHER["full_id"])
NOT_JSON.description_json = b"{not json"


@contextmanager
def forged_coordinator(events: Sequence[pb.ResolveEvent]) -> Iterator[str]:
    """A coordinator that answers `GetInfo` as envd does and streams `events` for any
    `Resolve`; its address."""

    async def get_info(request: Any, context: grpc.aio.ServicerContext) -> pb.ServerInfo:
        return pb.ServerInfo(version=envd.__version__, protocol_version=envd.PROTOCOL_VERSION,
                             store_url="file:///nowhere", platforms=["linux-64"])  # fmt: skip

    async def resolve(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        for message in events:
            yield message

    async def start() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server()
        handlers = {
            "GetInfo": grpc.unary_unary_rpc_method_handler(
                get_info, pb.GetInfoRequest.FromString, pb.ServerInfo.SerializeToString
            ),
            "Resolve": grpc.unary_stream_rpc_method_handler(
                resolve, pb.ResolveRequest.FromString, pb.ResolveEvent.SerializeToString
            ),
        }
        generic = grpc.method_handlers_generic_handler("envd.v1.Environments", handlers)
        server.add_generic_rpc_handlers((generic,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.mark.parametrize(
    ("events", "problem"),
    [
        ([ACCEPTED, event(Stage.DONE, Outcome.RESOLVED)], "a `done` event carries no full_id"),
        ([ACCEPTED, event(Stage.DONE, full_id=OTHER["full_id"])],  # promised resolved: no doc
         "a `done` event carries no description"),
        ([ACCEPTED, event(Stage.FAILED)], "a `failed` event carries no error"),
        ([ACCEPTED, event(Stage.DONE, Outcome.RESOLVED, full_id="f" * 40, description=OTHER)],
         f"its description's `full_id` is `{OTHER['full_id']}`, not `{'f' * 40}`"),
        ([ACCEPTED, event(Stage.DONE, Outcome.RESOLVED, full_id=OTHER["full_id"],
                          description=OTHER)],
         "its description's `platform` is `osx-arm64`, not `linux-64`"),
        ([ACCEPTED, NOT_JSON],
         "an event envd cannot read (its stage, outcome or description)"),
        ([ACCEPTED], "the stream ended while it was `accepted`"),
    ],
)  # fmt: skip
def test_an_incomplete_answer_is_a_failure(
    tmp_path: Path, events: list[pb.ResolveEvent], problem: str
) -> None:
    with forged_coordinator(events) as address:
        out = run_client("--coordinator", address, *ARGS, cwd=tmp_path)
        as_json = run_client("--coordinator", address, *ARGS, "--json", cwd=tmp_path)
    message = f"the coordinator's answer for `linux-64` is incomplete: {problem}"
    hint = (
        "the coordinator (or an agent it trusted) sent an answer envd never sends; resolve "
        "again, and tell the coordinator's operator if it persists"
    )
    assert out.returncode == 5, out.stderr
    assert normalized(out.stdout) == (
        f"### Environment for linux-64 ###\nOutcome: failed\nerror: {message}\nhint: {hint}\n"
        "\n### Summary ###\nlinux-64  failed  T s  JOB\n"
    )
    assert "Traceback" not in out.stderr
    assert as_json.returncode == 5, as_json.stderr
    (entry,) = one_json(as_json)["environments"]
    assert entry["outcome"] == "failed" and entry["full_id"] is None
    assert entry["error"] == {"reference": "E310", "message": message, "hint": hint}


def test_a_complete_answer_is_believed(tmp_path: Path) -> None:
    doc = description()
    done = event(Stage.DONE, Outcome.RESOLVED, full_id=doc["full_id"], description=doc)
    with forged_coordinator([ACCEPTED, done]) as address:
        out = run_client("--coordinator", address, *ARGS, "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (entry,) = one_json(out)["environments"]
    assert (entry["outcome"], entry["full_id"]) == ("resolved", doc["full_id"])
