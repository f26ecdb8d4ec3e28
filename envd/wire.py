"""Conversions between domain values and the envd.v1 protobuf messages (the pb2 edge)."""

from __future__ import annotations

import json
from typing import Any

import grpc

from envd.aliases import Alias, AliasMove, AliasTarget, parse_alias
from envd.errors import (
    CoordinatorBusyError,
    CoordinatorUnavailableError,
    EnvdError,
    InternalError,
    RequestTooLargeError,
    error_from_dict,
    error_to_dict,
)
from envd.locks import LockedPackage, LockedPlatform
from envd.progress import Outcome, ResolveEvent, Stage
from envd.spec import RawDependency, RawSpec, Spec
from envd.v1 import common_pb2, environments_pb2

ERROR_METADATA_KEY = "envd-error-bin"
PROTOCOL_METADATA_KEY = "envd-protocol"
VERSION_METADATA_KEY = "envd-version"
# what grpc's server says when `maximum_concurrent_rpcs` are open (the coordinator is busy;
# any other RESOURCE_EXHAUSTED without an envd error is a message over a size limit)
BUSY_DETAILS = "concurrent rpc limit exceeded"


def spec_to_pb(spec: Spec) -> common_pb2.Spec:
    return common_pb2.Spec(
        conda=[
            common_pb2.CondaDependency(
                name=d.name, spec=d.spec, category=d.category, selector=d.selector or ""
            )
            for d in spec.conda
        ],
        pypi=[
            common_pb2.PypiDependency(
                name=d.name,
                requirement=d.requirement,
                category=d.category,
                selector=d.selector or "",
            )
            for d in spec.pypi
        ],
        python=spec.python or "",
        channels=list(spec.channels),
        pypi_indexes=list(spec.pypi_indexes),
        pypi_find_links=list(spec.pypi_find_links),
        virtual_packages=dict(spec.virtual_packages),
        exclude_newer=spec.exclude_newer or "",
        locked=[
            common_pb2.LockedPlatform(
                platform=lp.platform, packages=[_locked_to_pb(p) for p in lp.packages]
            )
            for lp in spec.locked
        ],
    )


def _locked_to_pb(package: LockedPackage) -> common_pb2.LockedPackage:
    message = common_pb2.LockedPackage(
        kind=package.kind, name=package.name, version=package.version, build=package.build,
        channel=package.channel, url=package.url, filename=package.filename,
        sha256=package.sha256, md5=package.md5 or "", depends=list(package.depends),
        subdir=package.subdir,
    )  # fmt: skip
    if package.size is not None:
        message.size = package.size
    if package.build_number is not None:
        message.build_number = package.build_number
    if package.noarch:
        message.noarch = package.noarch
    return message


def _locked_from_pb(message: common_pb2.LockedPackage) -> LockedPackage:
    return LockedPackage(
        kind=message.kind, name=message.name, version=message.version, build=message.build,
        url=message.url, filename=message.filename, sha256=message.sha256,
        md5=message.md5 or None, size=message.size if message.HasField("size") else None,
        depends=tuple(message.depends), channel=message.channel, subdir=message.subdir,
        build_number=message.build_number if message.HasField("build_number") else None,
        noarch=message.noarch or None,
    )  # fmt: skip


def raw_spec_from_pb(message: common_pb2.Spec) -> RawSpec:
    """The coordinator re-normalizes what a client sent: a client can't pick its own req_id."""
    return RawSpec(
        conda=[
            RawDependency(d.spec, "request", None, d.category or "main", d.selector or None)
            for d in message.conda
        ],
        pypi=[
            RawDependency(d.requirement, "request", None, d.category or "main", d.selector or None)
            for d in message.pypi
        ],
        python=message.python or None,
        channels=list(message.channels),
        pypi_indexes=list(message.pypi_indexes),
        pypi_find_links=list(message.pypi_find_links),
        virtual_packages=dict(message.virtual_packages),
        exclude_newer=message.exclude_newer or None,
        locked=[
            LockedPlatform(lp.platform, tuple(_locked_from_pb(p) for p in lp.packages))
            for lp in message.locked
        ],
    )


def error_to_pb(err: EnvdError) -> common_pb2.Error:
    return common_pb2.Error(**error_to_dict(err))


def error_from_pb(message: common_pb2.Error) -> EnvdError:
    return error_from_dict(
        {"reference": message.reference, "message": message.message, "hint": message.hint}
    )


def status_code(err: EnvdError) -> grpc.StatusCode:
    """The one table from envd errors to gRPC status codes (each class names its status)."""
    return grpc.StatusCode[err.status]


def error_metadata(err: EnvdError) -> tuple[tuple[str, bytes], ...]:
    return ((ERROR_METADATA_KEY, json.dumps(error_to_dict(err)).encode()),)


def error_from_rpc(rpc_error: grpc.RpcError) -> EnvdError:
    """Rebuild the envd error a servicer raised, from the call's trailing metadata."""
    trailing: Any = getattr(rpc_error, "trailing_metadata", lambda: None)() or ()
    for key, value in trailing:
        if key == ERROR_METADATA_KEY:
            return error_from_dict(json.loads(value))
    code = rpc_error.code() if hasattr(rpc_error, "code") else None
    details = rpc_error.details() if hasattr(rpc_error, "details") else str(rpc_error)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and BUSY_DETAILS in (details or "").lower():
        return CoordinatorBusyError(
            f"the coordinator refused the call: {details}",
            hint="it has too many open calls; retry in a moment",
        )
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return RequestTooLargeError(
            f"the coordinator refused the request: {details}",
            hint="split the request into smaller environments",
        )
    # CANCELLED without an envd error: a stopping server ends the calls it had not started
    # yet that way (envd's own cancellations carry their error): gone for now, like UNAVAILABLE
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.CANCELLED):  # fmt: skip
        return CoordinatorUnavailableError(
            f"failed to reach the coordinator: {details}",
            hint="check `--coordinator` / ENVD_COORDINATOR and that envd-daemon is running",
        )
    return InternalError(f"coordinator call failed ({code}): {details}")


def event_to_pb(event: ResolveEvent) -> environments_pb2.ResolveEvent:
    message = environments_pb2.ResolveEvent(
        req_id=event.req_id,
        platform=event.platform,
        job_id=event.job_id,
        stage=stage_to_pb(event.stage),  # type: ignore[arg-type]
        outcome=_outcome_to_pb(event.outcome),  # type: ignore[arg-type]
        message=event.message,
        full_id=event.full_id,
        agent=event.agent,
    )
    if event.description is not None:
        message.description_json = json.dumps(event.description, sort_keys=True).encode()
    if event.error is not None:
        message.error.CopyFrom(error_to_pb(event.error))
    return message


def event_from_pb(message: environments_pb2.ResolveEvent) -> ResolveEvent:
    stage_name = environments_pb2.Stage.Name(message.stage).removeprefix("STAGE_")
    outcome = None
    if message.outcome != environments_pb2.OUTCOME_UNSPECIFIED:
        outcome = Outcome[environments_pb2.Outcome.Name(message.outcome).removeprefix("OUTCOME_")]
    return ResolveEvent(
        req_id=message.req_id,
        platform=message.platform,
        stage=Stage[stage_name],
        job_id=message.job_id,
        outcome=outcome,
        message=message.message,
        full_id=message.full_id,
        description=json.loads(message.description_json) if message.description_json else None,
        error=error_from_pb(message.error) if message.HasField("error") else None,
        agent=message.agent,
    )


def _outcome_to_pb(outcome: Outcome | None) -> int:
    if outcome is None:
        return int(environments_pb2.OUTCOME_UNSPECIFIED)
    return int(environments_pb2.Outcome.Value(f"OUTCOME_{outcome.name}"))


def stage_to_pb(stage: Stage) -> int:
    return int(environments_pb2.Stage.Value(f"STAGE_{stage.name}"))


def stage_from_pb(value: int) -> Stage:
    return Stage[environments_pb2.Stage.Name(value).removeprefix("STAGE_")]


def alias_to_pb(alias: Alias, *, history: bool = True) -> environments_pb2.Alias:
    return environments_pb2.Alias(
        alias=str(alias.name),
        req_id=alias.req_id or "",
        full_ids={p: e[0] for p, e in alias.environments.items()},
        digests={p: e[1] for p, e in alias.environments.items()},
        history=[_move_to_pb(m) for m in alias.history] if history else [],
    )


def alias_from_pb(message: environments_pb2.Alias) -> Alias:
    return Alias(
        name=parse_alias(message.alias),
        req_id=message.req_id or None,
        environments={p: (f, message.digests.get(p, "")) for p, f in message.full_ids.items()},
        history=tuple(
            AliasMove(
                m.when,
                m.who,
                m.action,
                _target_from_pb(m.before) if m.HasField("before") else None,
                _target_from_pb(m.after) if m.HasField("after") else None,
            )
            for m in message.history
        ),
    )


def _move_to_pb(move: AliasMove) -> environments_pb2.AliasMove:
    message = environments_pb2.AliasMove(when=move.when, who=move.who, action=move.action)
    if move.before is not None:
        message.before.CopyFrom(_target_to_pb(move.before))
    if move.after is not None:
        message.after.CopyFrom(_target_to_pb(move.after))
    return message


def _target_to_pb(target: AliasTarget) -> environments_pb2.AliasTarget:
    return environments_pb2.AliasTarget(req_id=target.req_id, full_ids=target.full_ids)


def _target_from_pb(message: environments_pb2.AliasTarget) -> AliasTarget:
    return AliasTarget(message.req_id, dict(message.full_ids))
