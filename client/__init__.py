"""envd-client: CLI, typed Python API, embedded default."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .deploy_hook import pre_deploy
    from .deploy_result import PreDeployResult
    from .manifest import Manifest, read_manifest

# the scheduler hook as `envd.client.pre_deploy(...)`, imported on first use so that
# `envd-client --version` stays light
_LAZY = {"pre_deploy": "deploy_hook", "PreDeployResult": "deploy_result",
         "Manifest": "manifest", "read_manifest": "manifest"}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)


__all__ = ["Manifest", "PreDeployResult", "pre_deploy", "read_manifest"]
