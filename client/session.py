"""Opens the coordinator a command talks to: the configured one (checked fast, failing in plain
words), the embedded default, or for reading only, the embedded home's store itself."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from envd.errors import CoordinatorUnavailableError

from .address import parse_address, unreachable_cause
from .api import EnvdClient, ServerInfo
from .config import ClientConfig
from .readers import CoordinatorReader, EnvironmentReader, StoreReader
from .writers import CoordinatorWriter, EnvironmentWriter, StoreWriter

CONNECT_TIMEOUT = 2.0  # a coordinator that does not answer GetInfo by then is unreachable
Notice = Callable[[str], None]


@contextmanager
def open_client(config: ClientConfig, on_notice: Notice | None = None) -> Iterator[EnvdClient]:
    if config.coordinator:
        with connect(config, on_notice) as (client, _):
            yield client
        return
    from envd.embedded import EmbeddedCoordinator  # daemon and agent: only when they run

    embedded = EmbeddedCoordinator(
        config.home, store_url=config.store, channel_alias=config.channel_alias
    )
    with (
        embedded as target,
        EnvdClient(target, reattach_timeout=config.reattach_timeout, on_notice=on_notice) as client,
    ):
        yield client


@contextmanager
def open_reader(config: ClientConfig) -> Iterator[EnvironmentReader]:
    """Read-only commands: the coordinator's RPCs, or the embedded home's store read directly
    (nothing is started and nothing is created, even when the home does not exist yet)."""
    if not config.coordinator:
        yield StoreReader(config.store_url)
        return
    with connect(config) as (client, info):
        yield CoordinatorReader(client, info.store_url)


@contextmanager
def open_writer(config: ClientConfig) -> Iterator[tuple[EnvironmentReader, EnvironmentWriter]]:
    """Commands that change the store: through the coordinator (which checks the token), or
    the embedded home's store directly, as the local user."""
    if not config.coordinator:
        from .api import local_user

        reader = StoreReader(config.store_url)
        yield reader, StoreWriter(reader, local_user(), config.home / "cache" / "archives-tmp")
        return
    with connect(config) as (client, info):
        yield CoordinatorReader(client, info.store_url), CoordinatorWriter(client)


@contextmanager
def connect(
    config: ClientConfig, on_notice: Notice | None = None
) -> Iterator[tuple[EnvdClient, ServerInfo]]:
    """A client on the configured coordinator, known to answer: within `CONNECT_TIMEOUT`
    it answers GetInfo, or this fails naming the address and why in plain words."""
    assert config.coordinator is not None
    address = parse_address(config.coordinator)
    with EnvdClient(
        address.target, reattach_timeout=config.reattach_timeout, on_notice=on_notice,
        **access(config),
    ) as client:  # fmt: skip
        try:
            info = client.info(timeout=CONNECT_TIMEOUT, wait_for_ready=False)
        except CoordinatorUnavailableError as err:
            raise unreachable(config.coordinator, err) from err
        yield client, info


def access(config: ClientConfig) -> dict[str, Any]:
    """TLS and the token for a configured coordinator (the embedded one needs neither)."""
    from envd.tokens import TokenInterceptor, channel_credentials

    return {
        "credentials": channel_credentials(config.tls_ca, config.tls_ca_source),
        "interceptors": (TokenInterceptor(config.token),) if config.token else (),
    }


def unreachable(shown: str, err: CoordinatorUnavailableError) -> CoordinatorUnavailableError:
    address = parse_address(shown)
    timed_out = "deadline" in err.message.lower()
    cause = "timed out" if timed_out else unreachable_cause(address, CONNECT_TIMEOUT / 2)
    if cause is None:
        cause = "something listens there but does not answer as an envd coordinator"
    elif timed_out:
        cause += f" after {CONNECT_TIMEOUT:g} s"
    return CoordinatorUnavailableError(
        f"failed to reach the coordinator at `{shown}`: {cause}",
        hint="check `--coordinator` / ENVD_COORDINATOR and that envd-daemon is running there",
    )
