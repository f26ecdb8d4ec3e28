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
    __slots__ = ("version", "protocol_version", "store_url", "platforms", "agents_per_platform")
    class AgentsPerPlatformEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    STORE_URL_FIELD_NUMBER: _ClassVar[int]
    PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    AGENTS_PER_PLATFORM_FIELD_NUMBER: _ClassVar[int]
    version: str
    protocol_version: int
    store_url: str
    platforms: _containers.RepeatedScalarFieldContainer[str]
    agents_per_platform: _containers.ScalarMap[str, int]
    def __init__(self, version: _Optional[str] = ..., protocol_version: _Optional[int] = ..., store_url: _Optional[str] = ..., platforms: _Optional[_Iterable[str]] = ..., agents_per_platform: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ResolveRequest(_message.Message):
    __slots__ = ("spec", "platforms", "force", "no_wait", "no_archives", "requester", "use_latest")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    NO_WAIT_FIELD_NUMBER: _ClassVar[int]
    NO_ARCHIVES_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    USE_LATEST_FIELD_NUMBER: _ClassVar[int]
    spec: _common_pb2.Spec
    platforms: _containers.RepeatedScalarFieldContainer[str]
    force: bool
    no_wait: bool
    no_archives: bool
    requester: _common_pb2.Requester
    use_latest: str
    def __init__(self, spec: _Optional[_Union[_common_pb2.Spec, _Mapping]] = ..., platforms: _Optional[_Iterable[str]] = ..., force: _Optional[bool] = ..., no_wait: _Optional[bool] = ..., no_archives: _Optional[bool] = ..., requester: _Optional[_Union[_common_pb2.Requester, _Mapping]] = ..., use_latest: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("req_id", "platform", "full_id", "alias")
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    FULL_ID_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    req_id: str
    platform: str
    full_id: str
    alias: str
    def __init__(self, req_id: _Optional[str] = ..., platform: _Optional[str] = ..., full_id: _Optional[str] = ..., alias: _Optional[str] = ...) -> None: ...

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

class AliasTarget(_message.Message):
    __slots__ = ("req_id", "full_ids")
    class FullIdsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    FULL_IDS_FIELD_NUMBER: _ClassVar[int]
    req_id: str
    full_ids: _containers.ScalarMap[str, str]
    def __init__(self, req_id: _Optional[str] = ..., full_ids: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AliasMove(_message.Message):
    __slots__ = ("when", "who", "action", "before", "after")
    WHEN_FIELD_NUMBER: _ClassVar[int]
    WHO_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    when: str
    who: str
    action: str
    before: AliasTarget
    after: AliasTarget
    def __init__(self, when: _Optional[str] = ..., who: _Optional[str] = ..., action: _Optional[str] = ..., before: _Optional[_Union[AliasTarget, _Mapping]] = ..., after: _Optional[_Union[AliasTarget, _Mapping]] = ...) -> None: ...

class Alias(_message.Message):
    __slots__ = ("alias", "req_id", "full_ids", "digests", "history")
    class FullIdsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class DigestsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    FULL_IDS_FIELD_NUMBER: _ClassVar[int]
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    alias: str
    req_id: str
    full_ids: _containers.ScalarMap[str, str]
    digests: _containers.ScalarMap[str, str]
    history: _containers.RepeatedCompositeFieldContainer[AliasMove]
    def __init__(self, alias: _Optional[str] = ..., req_id: _Optional[str] = ..., full_ids: _Optional[_Mapping[str, str]] = ..., digests: _Optional[_Mapping[str, str]] = ..., history: _Optional[_Iterable[_Union[AliasMove, _Mapping]]] = ...) -> None: ...

class SetAliasRequest(_message.Message):
    __slots__ = ("alias", "req_id", "full_ids", "requester")
    class FullIdsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    FULL_IDS_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    alias: str
    req_id: str
    full_ids: _containers.ScalarMap[str, str]
    requester: _common_pb2.Requester
    def __init__(self, alias: _Optional[str] = ..., req_id: _Optional[str] = ..., full_ids: _Optional[_Mapping[str, str]] = ..., requester: _Optional[_Union[_common_pb2.Requester, _Mapping]] = ...) -> None: ...

class GetAliasRequest(_message.Message):
    __slots__ = ("alias",)
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    alias: str
    def __init__(self, alias: _Optional[str] = ...) -> None: ...

class ListAliasesRequest(_message.Message):
    __slots__ = ("prefix",)
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    def __init__(self, prefix: _Optional[str] = ...) -> None: ...

class ListAliasesResponse(_message.Message):
    __slots__ = ("aliases",)
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    aliases: _containers.RepeatedCompositeFieldContainer[Alias]
    def __init__(self, aliases: _Optional[_Iterable[_Union[Alias, _Mapping]]] = ...) -> None: ...

class DeleteAliasRequest(_message.Message):
    __slots__ = ("alias", "requester")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    alias: str
    requester: _common_pb2.Requester
    def __init__(self, alias: _Optional[str] = ..., requester: _Optional[_Union[_common_pb2.Requester, _Mapping]] = ...) -> None: ...

class DeleteEnvironmentRequest(_message.Message):
    __slots__ = ("req_id", "platform", "full_id", "force", "requester")
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    FULL_ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    req_id: str
    platform: str
    full_id: str
    force: bool
    requester: _common_pb2.Requester
    def __init__(self, req_id: _Optional[str] = ..., platform: _Optional[str] = ..., full_id: _Optional[str] = ..., force: _Optional[bool] = ..., requester: _Optional[_Union[_common_pb2.Requester, _Mapping]] = ...) -> None: ...

class DeleteEnvironmentResponse(_message.Message):
    __slots__ = ("default_removed", "aliases_updated")
    DEFAULT_REMOVED_FIELD_NUMBER: _ClassVar[int]
    ALIASES_UPDATED_FIELD_NUMBER: _ClassVar[int]
    default_removed: bool
    aliases_updated: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, default_removed: _Optional[bool] = ..., aliases_updated: _Optional[_Iterable[str]] = ...) -> None: ...

class CollectGarbageRequest(_message.Message):
    __slots__ = ("dry_run", "grace_seconds")
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    GRACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    grace_seconds: float
    def __init__(self, dry_run: _Optional[bool] = ..., grace_seconds: _Optional[float] = ...) -> None: ...

class CollectGarbageResponse(_message.Message):
    __slots__ = ("removed", "removed_bytes", "kept_young", "unreadable")
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_BYTES_FIELD_NUMBER: _ClassVar[int]
    KEPT_YOUNG_FIELD_NUMBER: _ClassVar[int]
    UNREADABLE_FIELD_NUMBER: _ClassVar[int]
    removed: _containers.RepeatedScalarFieldContainer[str]
    removed_bytes: int
    kept_young: int
    unreadable: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, removed: _Optional[_Iterable[str]] = ..., removed_bytes: _Optional[int] = ..., kept_young: _Optional[int] = ..., unreadable: _Optional[_Iterable[str]] = ...) -> None: ...
