from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Error(_message.Message):
    __slots__ = ("reference", "message", "hint")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HINT_FIELD_NUMBER: _ClassVar[int]
    reference: str
    message: str
    hint: str
    def __init__(self, reference: _Optional[str] = ..., message: _Optional[str] = ..., hint: _Optional[str] = ...) -> None: ...

class CondaDependency(_message.Message):
    __slots__ = ("name", "spec", "category", "selector")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    spec: str
    category: str
    selector: str
    def __init__(self, name: _Optional[str] = ..., spec: _Optional[str] = ..., category: _Optional[str] = ..., selector: _Optional[str] = ...) -> None: ...

class PypiDependency(_message.Message):
    __slots__ = ("name", "requirement", "category", "selector")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    requirement: str
    category: str
    selector: str
    def __init__(self, name: _Optional[str] = ..., requirement: _Optional[str] = ..., category: _Optional[str] = ..., selector: _Optional[str] = ...) -> None: ...

class Spec(_message.Message):
    __slots__ = ("conda", "pypi", "python", "channels", "pypi_indexes", "virtual_packages", "exclude_newer", "locked", "pypi_find_links")
    class VirtualPackagesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONDA_FIELD_NUMBER: _ClassVar[int]
    PYPI_FIELD_NUMBER: _ClassVar[int]
    PYTHON_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    PYPI_INDEXES_FIELD_NUMBER: _ClassVar[int]
    VIRTUAL_PACKAGES_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_NEWER_FIELD_NUMBER: _ClassVar[int]
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    PYPI_FIND_LINKS_FIELD_NUMBER: _ClassVar[int]
    conda: _containers.RepeatedCompositeFieldContainer[CondaDependency]
    pypi: _containers.RepeatedCompositeFieldContainer[PypiDependency]
    python: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    pypi_indexes: _containers.RepeatedScalarFieldContainer[str]
    virtual_packages: _containers.ScalarMap[str, str]
    exclude_newer: str
    locked: _containers.RepeatedCompositeFieldContainer[LockedPlatform]
    pypi_find_links: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, conda: _Optional[_Iterable[_Union[CondaDependency, _Mapping]]] = ..., pypi: _Optional[_Iterable[_Union[PypiDependency, _Mapping]]] = ..., python: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ..., pypi_indexes: _Optional[_Iterable[str]] = ..., virtual_packages: _Optional[_Mapping[str, str]] = ..., exclude_newer: _Optional[str] = ..., locked: _Optional[_Iterable[_Union[LockedPlatform, _Mapping]]] = ..., pypi_find_links: _Optional[_Iterable[str]] = ...) -> None: ...

class LockedPlatform(_message.Message):
    __slots__ = ("platform", "packages")
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    PACKAGES_FIELD_NUMBER: _ClassVar[int]
    platform: str
    packages: _containers.RepeatedCompositeFieldContainer[LockedPackage]
    def __init__(self, platform: _Optional[str] = ..., packages: _Optional[_Iterable[_Union[LockedPackage, _Mapping]]] = ...) -> None: ...

class LockedPackage(_message.Message):
    __slots__ = ("kind", "name", "version", "build", "channel", "url", "filename", "sha256", "md5", "size", "depends", "subdir", "build_number", "noarch")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    MD5_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_FIELD_NUMBER: _ClassVar[int]
    SUBDIR_FIELD_NUMBER: _ClassVar[int]
    BUILD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    NOARCH_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    version: str
    build: str
    channel: str
    url: str
    filename: str
    sha256: str
    md5: str
    size: int
    depends: _containers.RepeatedScalarFieldContainer[str]
    subdir: str
    build_number: int
    noarch: str
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., build: _Optional[str] = ..., channel: _Optional[str] = ..., url: _Optional[str] = ..., filename: _Optional[str] = ..., sha256: _Optional[str] = ..., md5: _Optional[str] = ..., size: _Optional[int] = ..., depends: _Optional[_Iterable[str]] = ..., subdir: _Optional[str] = ..., build_number: _Optional[int] = ..., noarch: _Optional[str] = ...) -> None: ...

class Requester(_message.Message):
    __slots__ = ("user", "host")
    USER_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    user: str
    host: str
    def __init__(self, user: _Optional[str] = ..., host: _Optional[str] = ...) -> None: ...
