from envd.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Stage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STAGE_UNSPECIFIED: _ClassVar[Stage]
    STAGE_ACCEPTED: _ClassVar[Stage]
    STAGE_QUEUED: _ClassVar[Stage]
    STAGE_LEASED: _ClassVar[Stage]
    STAGE_RESOLVING: _ClassVar[Stage]
    STAGE_BUILDING: _ClassVar[Stage]
    STAGE_UPLOADING: _ClassVar[Stage]
    STAGE_DONE: _ClassVar[Stage]
    STAGE_FAILED: _ClassVar[Stage]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_CACHE_HIT: _ClassVar[Outcome]
    OUTCOME_DEDUP: _ClassVar[Outcome]
    OUTCOME_RESOLVED: _ClassVar[Outcome]
    OUTCOME_FAILED: _ClassVar[Outcome]
STAGE_UNSPECIFIED: Stage
STAGE_ACCEPTED: Stage
STAGE_QUEUED: Stage
STAGE_LEASED: Stage
STAGE_RESOLVING: Stage
STAGE_BUILDING: Stage
STAGE_UPLOADING: Stage
STAGE_DONE: Stage
STAGE_FAILED: Stage
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_CACHE_HIT: Outcome
OUTCOME_DEDUP: Outcome
OUTCOME_RESOLVED: Outcome
OUTCOME_FAILED: Outcome

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerInfo(_message.Message):
    __slots__ = ("version", "protocol_version", "store_url", "platforms")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    STORE_URL_FIELD_NUMBER: _ClassVar[int]
    PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    version: str
    protocol_version: int
    store_url: str
    platforms: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[str] = ..., protocol_version: _Optional[int] = ..., store_url: _Optional[str] = ..., platforms: _Optional[_Iterable[str]] = ...) -> None: ...

class ResolveRequest(_message.Message):
    __slots__ = ("spec", "platforms", "force", "no_wait", "no_archives", "requester")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    NO_WAIT_FIELD_NUMBER: _ClassVar[int]
    NO_ARCHIVES_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    spec: _common_pb2.Spec
    platforms: _containers.RepeatedScalarFieldContainer[str]
    force: bool
    no_wait: bool
    no_archives: bool
    requester: _common_pb2.Requester
    def __init__(self, spec: _Optional[_Union[_common_pb2.Spec, _Mapping]] = ..., platforms: _Optional[_Iterable[str]] = ..., force: _Optional[bool] = ..., no_wait: _Optional[bool] = ..., no_archives: _Optional[bool] = ..., requester: _Optional[_Union[_common_pb2.Requester, _Mapping]] = ...) -> None: ...

class WaitRequest(_message.Message):
    __slots__ = ("job_ids",)
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ResolveEvent(_message.Message):
    __slots__ = ("req_id", "platform", "job_id", "stage", "outcome", "message", "full_id", "description_json", "error", "agent")
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FULL_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    req_id: str
    platform: str
    job_id: str
    stage: Stage
    outcome: Outcome
    message: str
    full_id: str
    description_json: bytes
    error: _common_pb2.Error
    agent: str
    def __init__(self, req_id: _Optional[str] = ..., platform: _Optional[str] = ..., job_id: _Optional[str] = ..., stage: _Optional[_Union[Stage, str]] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., message: _Optional[str] = ..., full_id: _Optional[str] = ..., description_json: _Optional[bytes] = ..., error: _Optional[_Union[_common_pb2.Error, _Mapping]] = ..., agent: _Optional[str] = ...) -> None: ...

class GetEnvironmentRequest(_message.Message):
    __slots__ = ("req_id", "platform", "full_id")
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    FULL_ID_FIELD_NUMBER: _ClassVar[int]
    req_id: str
    platform: str
    full_id: str
    def __init__(self, req_id: _Optional[str] = ..., platform: _Optional[str] = ..., full_id: _Optional[str] = ...) -> None: ...

class Environment(_message.Message):
    __slots__ = ("description_json", "is_default")
    DESCRIPTION_JSON_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    description_json: bytes
    is_default: bool
    def __init__(self, description_json: _Optional[bytes] = ..., is_default: _Optional[bool] = ...) -> None: ...

class ListEnvironmentsRequest(_message.Message):
    __slots__ = ("req_id",)
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    req_id: str
    def __init__(self, req_id: _Optional[str] = ...) -> None: ...

class EnvironmentSummary(_message.Message):
    __slots__ = ("req_id", "platform", "full_id", "resolved_at", "is_default")
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    FULL_ID_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    req_id: str
    platform: str
    full_id: str
    resolved_at: str
    is_default: bool
    def __init__(self, req_id: _Optional[str] = ..., platform: _Optional[str] = ..., full_id: _Optional[str] = ..., resolved_at: _Optional[str] = ..., is_default: _Optional[bool] = ...) -> None: ...

class ListEnvironmentsResponse(_message.Message):
    __slots__ = ("environments", "warnings")
    ENVIRONMENTS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    environments: _containers.RepeatedCompositeFieldContainer[EnvironmentSummary]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, environments: _Optional[_Iterable[_Union[EnvironmentSummary, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...
