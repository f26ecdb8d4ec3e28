"""Domain values are frozen and slotted (STYLE.md): a mutable job or spec could be changed
behind the state's back. Mutation testing found that nothing checked it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from envd.catalog import EnvironmentListing, EnvironmentSummary, UnreadableObject
from envd.channel_policy import ChannelPolicy
from envd.daemon.agent_registry import AssignJob, CloseSession, RevokeLease
from envd.daemon.agent_sessions import Registration
from envd.daemon.state import Job, JobStatus, NewJob
from envd.description import BuildOrigin, PackageFormat, ResolvedBy, ResolvedPackage, SolverInfo
from envd.ids import PackageIdentity
from envd.spec import CondaDependency, PypiDependency, RawDependency, Spec

JOB = Job("j", "r" * 40, "linux-64", b"{}", False, {}, JobStatus.QUEUED, None, None, None, 0,
          None, None, 1.0, 1.0)  # fmt: skip
VALUES = [
    JOB,
    NewJob("r" * 40, "linux-64", b"{}", False, {}),
    Registration("a", "h", ("linux-64",), 1, ()),
    ChannelPolicy.of(["https://*"], [Path("/srv")]),
    PackageIdentity("conda", "zlib", "1.3", "h0", "zlib-1.3-h0.conda", "1" * 64),
    AssignJob(JOB),
    RevokeLease("lease-1", "why"),
    CloseSession("why"),
    # a description's parts: hashed into full_ids and shared between threads
    ResolvedBy("ada", "agent-1", "h"),
    SolverInfo("rattler", "0.28.0"),
    PackageFormat(".conda", "zlib-1.3-h0.conda", "1" * 64, 1),
    BuildOrigin("https://example.org/zlib-1.3.tar.gz", "a" * 64, "agent-1", "linux-64"),
    ResolvedPackage("conda", "zlib", "1", "h0", "c", "u", "f", "1" * 64, None, 1, "noarch"),
    # a spec: hashed into req_ids, kept in jobs
    CondaDependency("zlib", "zlib"),
    PypiDependency("requests", "requests"),
    Spec(),
    RawDependency("zlib"),
    # what the catalog lists
    EnvironmentSummary("r" * 40, "linux-64", "f" * 40, "2024-05-01T12:00:00Z", True),
    UnreadableObject("envs/x", "why"),
    EnvironmentListing((), ()),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_domain_values_are_frozen_and_slotted(value: object) -> None:
    first = dataclasses.fields(value)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, first, None)
    assert not hasattr(value, "__dict__")
