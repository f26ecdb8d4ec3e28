from envd.v1 import common_pb2 as _common_pb2
from envd.v1 import environments_pb2 as _environments_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentMessage(_message.Message):
    __slots__ = ("register", "heartbeat", "progress", "result", "failure", "release")
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    register: Register
    heartbeat: Heartbeat
    progress: JobProgress
    result: JobResult
    failure: JobFailure
    release: JobRelease
    def __init__(self, register: _Optional[_Union[Register, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., progress: _Optional[_Union[JobProgress, _Mapping]] = ..., result: _Optional[_Union[JobResult, _Mapping]] = ..., failure: _Optional[_Union[JobFailure, _Mapping]] = ..., release: _Optional[_Union[JobRelease, _Mapping]] = ...) -> None: ...

class Register(_message.Message):
    __slots__ = ("agent_id", "host", "platforms", "protocol_version", "version", "slots", "held_lease_ids", "native_platform", "build_pythons")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    HELD_LEASE_IDS_FIELD_NUMBER: _ClassVar[int]
    NATIVE_PLATFORM_FIELD_NUMBER: _ClassVar[int]
    BUILD_PYTHONS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    host: str
    platforms: _containers.RepeatedScalarFieldContainer[str]
    protocol_version: int
    version: str
    slots: int
    held_lease_ids: _containers.RepeatedScalarFieldContainer[str]
    native_platform: str
    build_pythons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, agent_id: _Optional[str] = ..., host: _Optional[str] = ..., platforms: _Optional[_Iterable[str]] = ..., protocol_version: _Optional[int] = ..., version: _Optional[str] = ..., slots: _Optional[int] = ..., held_lease_ids: _Optional[_Iterable[str]] = ..., native_platform: _Optional[str] = ..., build_pythons: _Optional[_Iterable[str]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("lease_ids",)
    LEASE_IDS_FIELD_NUMBER: _ClassVar[int]
    lease_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, lease_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class JobProgress(_message.Message):
    __slots__ = ("lease_id", "stage", "message")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    stage: _environments_pb2.Stage
    message: str
    def __init__(self, lease_id: _Optional[str] = ..., stage: _Optional[_Union[_environments_pb2.Stage, str]] = ..., message: _Optional[str] = ...) -> None: ...

class JobResult(_message.Message):
    __slots__ = ("lease_id", "full_id")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    FULL_ID_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    full_id: str
    def __init__(self, lease_id: _Optional[str] = ..., full_id: _Optional[str] = ...) -> None: ...

class JobFailure(_message.Message):
    __slots__ = ("lease_id", "error")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    error: _common_pb2.Error
    def __init__(self, lease_id: _Optional[str] = ..., error: _Optional[_Union[_common_pb2.Error, _Mapping]] = ...) -> None: ...

class JobRelease(_message.Message):
    __slots__ = ("lease_id", "reason", "native_builds", "native_python")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NATIVE_BUILDS_FIELD_NUMBER: _ClassVar[int]
    NATIVE_PYTHON_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    reason: str
    native_builds: _containers.RepeatedScalarFieldContainer[str]
    native_python: str
    def __init__(self, lease_id: _Optional[str] = ..., reason: _Optional[str] = ..., native_builds: _Optional[_Iterable[str]] = ..., native_python: _Optional[str] = ...) -> None: ...

class CoordinatorMessage(_message.Message):
    __slots__ = ("welcome", "assignment", "revoked")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    assignment: JobAssignment
    revoked: LeaseRevoked
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., assignment: _Optional[_Union[JobAssignment, _Mapping]] = ..., revoked: _Optional[_Union[LeaseRevoked, _Mapping]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("store_url", "lease_ttl_ms", "heartbeat_interval_ms", "protocol_version", "version")
    STORE_URL_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    store_url: str
    lease_ttl_ms: int
    heartbeat_interval_ms: int
    protocol_version: int
    version: str
    def __init__(self, store_url: _Optional[str] = ..., lease_ttl_ms: _Optional[int] = ..., heartbeat_interval_ms: _Optional[int] = ..., protocol_version: _Optional[int] = ..., version: _Optional[str] = ...) -> None: ...

class JobAssignment(_message.Message):
    __slots__ = ("job_id", "lease_id", "req_id", "platform", "canonical_spec", "no_archives", "requester")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_SPEC_FIELD_NUMBER: _ClassVar[int]
    NO_ARCHIVES_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    lease_id: str
    req_id: str
    platform: str
    canonical_spec: bytes
    no_archives: bool
    requester: _common_pb2.Requester
    def __init__(self, job_id: _Optional[str] = ..., lease_id: _Optional[str] = ..., req_id: _Optional[str] = ..., platform: _Optional[str] = ..., canonical_spec: _Optional[bytes] = ..., no_archives: _Optional[bool] = ..., requester: _Optional[_Union[_common_pb2.Requester, _Mapping]] = ...) -> None: ...

class LeaseRevoked(_message.Message):
    __slots__ = ("lease_id", "reason")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    reason: str
    def __init__(self, lease_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
