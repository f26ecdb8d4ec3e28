"""Opens a client on the configured coordinator, or on the embedded default when none is."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from envd.embedded import EmbeddedCoordinator

from .api import EnvdClient
from .config import ClientConfig


@contextmanager
def open_client(config: ClientConfig) -> Iterator[EnvdClient]:
    if config.coordinator:
        with EnvdClient(config.coordinator) as client:
            client.info(timeout=10.0)  # fails early and clearly if unreachable or incompatible
            yield client
        return
    embedded = EmbeddedCoordinator(
        config.home, store_url=config.store, channel_alias=config.channel_alias
    )
    with embedded as target, EnvdClient(target) as client:
        yield client
