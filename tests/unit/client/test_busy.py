"""Retrying what a busy coordinator refused: bounded, jittered, announced (envd.client.busy),
and the refusal told apart from a request over a size limit (envd.wire.error_from_rpc)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from envd.client.busy import BusyRetry
from envd.errors import CoordinatorBusyError, CoordinatorUnavailableError, RequestTooLargeError
from envd.wire import error_from_rpc


class Refusal(grpc.RpcError):  # type: ignore[misc]
    def __init__(self, details: str, code: grpc.StatusCode = grpc.StatusCode.RESOURCE_EXHAUSTED):
        self._details = details
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return ()


def test_grpcs_concurrency_refusal_is_busy_and_a_size_refusal_is_not() -> None:
    busy = error_from_rpc(Refusal("Concurrent RPC limit exceeded!"))
    assert isinstance(busy, CoordinatorBusyError)
    assert busy.message == "the coordinator refused the call: Concurrent RPC limit exceeded!"
    large = error_from_rpc(Refusal("Received message larger than max (5000000 vs. 4194304)"))
    assert isinstance(large, RequestTooLargeError)


def test_a_call_a_stopping_server_cancelled_is_unavailable_so_the_client_reattaches() -> None:
    cancelled = error_from_rpc(Refusal("CANCELLED", grpc.StatusCode.CANCELLED))
    assert isinstance(cancelled, CoordinatorUnavailableError)


def test_a_refused_call_is_retried_with_growing_jittered_waits_then_answered() -> None:
    slept: list[float] = []
    notices: list[str] = []
    retry = BusyRetry(attempts=5, base_delay=0.25, max_delay=1.0, sleep=slept.append,
                      jitter=lambda: 0.5)  # fmt: skip
    calls = iter([CoordinatorBusyError("busy")] * 3 + ["answer"])

    def call() -> str:
        outcome = next(calls)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert retry.run(call, "host:1", notices.append) == "answer"
    assert slept == [0.25, 0.5, 1.0]
    assert notices[0] == (
        "the coordinator at `host:1` is busy (too many open calls); retrying in 0.2 s "
        "(attempt 2 of 5)"
    )
    assert len(notices) == 3


def test_the_last_refusal_is_reported_saying_how_long_it_was_tried() -> None:
    retry = BusyRetry(attempts=3, base_delay=1.0, sleep=lambda _: None, jitter=lambda: 0.5)

    def refused() -> None:
        raise CoordinatorBusyError("busy")

    with pytest.raises(CoordinatorBusyError) as caught:
        retry.run(refused, "host:1", lambda _: None)
    assert caught.value.message == (
        "the coordinator at `host:1` refused the call 3 times over 3.0 s: it has too many "
        "open calls"
    )
    assert caught.value.hint == (
        "retry later, or ask its operator to raise `--max-concurrent-calls`"
    )


def test_other_errors_are_not_retried() -> None:
    retry = BusyRetry(sleep=lambda _: pytest.fail("slept"))

    def fails() -> None:
        raise RequestTooLargeError("too large")

    with pytest.raises(RequestTooLargeError):
        retry.run(fails, "host:1", lambda _: None)
