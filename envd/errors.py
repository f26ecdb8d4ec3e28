"""The one error root of envd and the failures a user can act on."""

from __future__ import annotations

from typing import ClassVar

MAX_MESSAGE_CHARS = 2000


def _bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[: limit - 40]}… ({len(text) - limit + 40} more characters)"


class EnvdError(Exception):
    """Root of every error envd reports to a user.

    `reference` is a stable short code users can search for; `status` names the gRPC status
    code the servicers send (kept as a string so the domain never imports grpc); `exit_code`
    is what the CLI exits with.
    """

    reference: ClassVar[str] = "E000"
    status: ClassVar[str] = "INTERNAL"
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        # errors often quote input: a bounded message can't outgrow gRPC's metadata limit
        message = _bounded(message, MAX_MESSAGE_CHARS)
        super().__init__(message)
        self.message = message
        self.hint = None if hint is None else _bounded(hint, MAX_MESSAGE_CHARS // 4)

    def __str__(self) -> str:
        return self.message


class InvalidSpecError(EnvdError):
    """A spec file or inline spec cannot be parsed or normalized."""

    reference = "E100"
    status = "INVALID_ARGUMENT"
    exit_code = 2


class UnknownPlatformError(EnvdError):
    reference = "E101"
    status = "INVALID_ARGUMENT"
    exit_code = 2


class RequestTooLargeError(EnvdError):
    reference = "E102"
    status = "RESOURCE_EXHAUSTED"
    exit_code = 2


class PypiNotAvailableError(EnvdError):
    """PyPI dependencies this agent can't resolve: it has no PyPI (or mixed) resolver, or
    packages need a native wheel build that its resolver doesn't do or that has no source."""

    reference = "E103"
    status = "UNIMPLEMENTED"
    exit_code = 3


class ConfigError(EnvdError):
    reference = "E104"
    status = "INVALID_ARGUMENT"
    exit_code = 2


class PackageNotFoundError(EnvdError):
    reference = "E200"
    status = "FAILED_PRECONDITION"
    exit_code = 3


class UnsatisfiableError(EnvdError):
    reference = "E201"
    status = "FAILED_PRECONDITION"
    exit_code = 3


class ChannelError(EnvdError):
    """A channel is missing or unreachable."""

    reference = "E202"
    status = "UNAVAILABLE"
    exit_code = 3


class SolveTimeoutError(EnvdError):
    reference = "E203"
    status = "DEADLINE_EXCEEDED"
    exit_code = 3


class StageTimeoutError(EnvdError):
    """A stage of a job (fetching repodata, fetching or uploading an archive) or the whole job
    ran past its deadline; the message names the stage and the URL it was waiting on."""

    reference = "E204"
    status = "DEADLINE_EXCEEDED"
    exit_code = 3


class ChannelNotAllowedError(EnvdError):
    """A channel (or a URL derived from one) outside the coordinator's channel policy."""

    reference = "E205"
    status = "PERMISSION_DENIED"
    exit_code = 2


class WheelBuildError(EnvdError):
    """A native wheel build failed: the build itself (its log's tail in the message), a wheel
    whose tags or glibc don't fit the target, or no host interpreter of the python asked for.
    Nothing of it is stored."""

    reference = "E210"
    status = "FAILED_PRECONDITION"
    exit_code = 3


class NoAgentForPlatformError(EnvdError):
    reference = "E300"
    status = "UNAVAILABLE"
    exit_code = 4


class JobNotFoundError(EnvdError):
    reference = "E301"
    status = "NOT_FOUND"
    exit_code = 4


class EnvironmentNotFoundError(EnvdError):
    reference = "E302"
    status = "NOT_FOUND"
    exit_code = 4


class IncompatibleVersionError(EnvdError):
    reference = "E303"
    status = "FAILED_PRECONDITION"
    exit_code = 5


class CoordinatorUnavailableError(EnvdError):
    reference = "E304"
    status = "UNAVAILABLE"
    exit_code = 5


class StaleLeaseError(EnvdError):
    """A result arrived under a lease the coordinator has already given to another agent."""

    reference = "E305"
    status = "FAILED_PRECONDITION"
    exit_code = 4


class JobCancelledError(EnvdError):
    """The job was cancelled before it ended."""

    reference = "E306"
    status = "CANCELLED"
    exit_code = 4


class CoordinatorShuttingDownError(CoordinatorUnavailableError):
    """The coordinator is stopping: re-attach to the job ids already received."""

    reference = "E307"


class JobAttemptsExceededError(EnvdError):
    """A job whose leases kept ending without a result (a poison job) is failed, not retried."""

    reference = "E308"
    status = "ABORTED"
    exit_code = 4


class StateError(EnvdError):
    """The coordinator's state store can't be written or read (full disk, corrupt file)."""

    reference = "E309"
    status = "UNAVAILABLE"
    exit_code = 6


class IncompleteAnswerError(EnvdError):
    """The coordinator's answer lacks what it must carry (a `done` event without a full_id or
    a valid description, a `failed` one without its error, a stream that ended early): the
    client believes only complete answers."""

    reference = "E310"
    status = "DATA_LOSS"
    exit_code = 5


class CoordinatorBusyError(EnvdError):
    """The coordinator refused a call because too many are open (RESOURCE_EXHAUSTED without
    an envd error): the client retries with backoff before reporting it."""

    reference = "E311"
    status = "RESOURCE_EXHAUSTED"
    exit_code = 5


class StoreError(EnvdError):
    reference = "E400"
    status = "UNAVAILABLE"
    exit_code = 6


class CorruptDescriptionError(StoreError):
    """A stored description fails its JSON Schema; the message names the field."""

    reference = "E401"
    status = "DATA_LOSS"


class PreconditionFailed(StoreError):
    """A create-only put found an object, or a compare-and-swap found another version."""

    reference = "E402"
    status = "ABORTED"


class AliasConflictError(EnvdError):
    """An alias can't be pointed: its write-once (version-like) tag is already set elsewhere,
    or another writer moved it first; the message names what it points at now."""

    reference = "E112"
    status = "ABORTED"
    exit_code = 2


class AliasNotFoundError(EnvdError):
    reference = "E113"
    status = "NOT_FOUND"
    exit_code = 2


class InvalidAliasError(EnvdError):
    """Not an alias name (`namespace/name[:tag]`, lowercase letters, digits, `-_./`)."""

    reference = "E114"
    status = "INVALID_ARGUMENT"
    exit_code = 2


class EnvironmentInUseError(EnvdError):
    """An environment aliases point at is not deleted without `--force`."""

    reference = "E115"
    status = "FAILED_PRECONDITION"
    exit_code = 2


class InvalidManifestError(EnvdError):
    """A pre-deploy manifest (`envd-client pre-deploy`) cannot be read: the message names the
    file, the step and the field."""

    reference = "E160"
    status = "INVALID_ARGUMENT"
    exit_code = 2


class UnauthenticatedError(EnvdError):
    """No token, or one the coordinator does not know."""

    reference = "E120"
    status = "UNAUTHENTICATED"
    exit_code = 7


class PermissionDeniedError(EnvdError):
    """A known token whose role or namespaces do not allow the call."""

    reference = "E121"
    status = "PERMISSION_DENIED"
    exit_code = 7


class InternalError(EnvdError):
    reference = "E999"
    status = "INTERNAL"
    exit_code = 70


def all_error_classes() -> dict[str, type[EnvdError]]:
    """Every error class by reference: the client maps wire errors back through this. Only a
    class that declares its own reference owns it: a subclass keeping its parent's
    (`JobTransitionError`, E999) never takes it over, whenever it was imported."""
    found: dict[str, type[EnvdError]] = {}
    pending: list[type[EnvdError]] = [EnvdError]
    while pending:
        cls = pending.pop()
        if "reference" in vars(cls):
            found[cls.reference] = cls
        pending.extend(cls.__subclasses__())
    return found


def error_to_dict(err: EnvdError) -> dict[str, str]:
    """The persisted form of an error (job state), rebuilt by `error_from_dict`."""
    return {"reference": err.reference, "message": err.message, "hint": err.hint or ""}


def error_from_dict(data: dict[str, str]) -> EnvdError:
    cls = all_error_classes().get(data.get("reference", ""), InternalError)
    return cls(data.get("message", ""), data.get("hint") or None)


class InvalidKeyError(StoreError):
    """A store key or one of its parts (id, platform, alias segment) is malformed."""

    reference = "E403"
    status = "INVALID_ARGUMENT"
    exit_code = 2


class CorruptObjectError(StoreError):
    """A stored pointer (default, alias, link) cannot be parsed or names a missing object."""

    reference = "E404"
    status = "DATA_LOSS"


class ArchiveIntegrityError(EnvdError):
    """An archive's bytes differ from what its channel, the store or its source promise (hash,
    size, or the files inside): such an archive is never stored or installed."""

    reference = "E500"
    status = "DATA_LOSS"
    exit_code = 6


class InstallError(EnvdError):
    """`create` could not make the prefix hold exactly the description (the installer failed,
    or its records differ from the description); what it made is removed."""

    reference = "E501"
    status = "FAILED_PRECONDITION"
    exit_code = 6


class AmbiguousIdError(EnvdError):
    """An abbreviated id matches more than one environment id; the message lists them."""

    reference = "E110"
    status = "INVALID_ARGUMENT"
    exit_code = 2


class UnknownIdError(EnvdError):
    """No stored environment has this id (or an id starting with it); the hint names the
    closest ones."""

    reference = "E111"
    status = "NOT_FOUND"
    exit_code = 2


class LockExportError(EnvdError):
    """An environment cannot be written in the asked lock or export format (PyPI packages in an
    `@EXPLICIT` file, several platforms for one path, a missing hash the format needs)."""

    reference = "E130"
    status = "INVALID_ARGUMENT"
    exit_code = 2


class InvalidLockError(EnvdError):
    """A lock file (conda-lock, pixi, `@EXPLICIT`) can't be read, or an entry of it can't be
    trusted: the message names the file and the entry."""

    reference = "E140"
    status = "INVALID_ARGUMENT"
    exit_code = 2


class StaleLockError(EnvdError):
    """`resolve --lock PATH --locked`: the lock no longer satisfies the spec (or is missing);
    the hint names the command that brings it up to date."""

    reference = "E141"
    status = "FAILED_PRECONDITION"
    exit_code = 2
