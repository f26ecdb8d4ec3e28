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
    __slots__ = ("conda", "pypi", "python", "channels", "pypi_indexes", "virtual_packages", "exclude_newer")
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
    conda: _containers.RepeatedCompositeFieldContainer[CondaDependency]
    pypi: _containers.RepeatedCompositeFieldContainer[PypiDependency]
    python: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    pypi_indexes: _containers.RepeatedScalarFieldContainer[str]
    virtual_packages: _containers.ScalarMap[str, str]
    exclude_newer: str
    def __init__(self, conda: _Optional[_Iterable[_Union[CondaDependency, _Mapping]]] = ..., pypi: _Optional[_Iterable[_Union[PypiDependency, _Mapping]]] = ..., python: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ..., pypi_indexes: _Optional[_Iterable[str]] = ..., virtual_packages: _Optional[_Mapping[str, str]] = ..., exclude_newer: _Optional[str] = ...) -> None: ...

class Requester(_message.Message):
    __slots__ = ("user", "host")
    USER_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    user: str
    host: str
    def __init__(self, user: _Optional[str] = ..., host: _Optional[str] = ...) -> None: ...
