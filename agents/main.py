"""`envd-agent`: read options, build the resolver and runner, connect to the coordinator."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
from pathlib import Path

import envd
from envd.catalog import Catalog
from envd.channels import DEFAULT_CHANNEL_ALIAS
from envd.clock import SystemClock
from envd.errors import EnvdError
from envd.logs import configure_logging, report_error
from envd.platforms import check_platform, host_platform_name
from envd.store.url import open_store

from .conda_resolver import CondaResolver
from .connection import AgentConnection, AgentIdentity, platforms_tuple
from .job_runner import JobRunner


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "envd" / "agent"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="envd-agent",
        description="An envd agent: dials out to the coordinator, leases jobs for its platforms, "
        "resolves them with py-rattler and writes descriptions to the store.",
    )
    parser.add_argument(
        "--coordinator",
        default=os.environ.get("ENVD_COORDINATOR"),
        help="HOST:PORT or unix:PATH of envd-daemon (default $ENVD_COORDINATOR)",
    )
    parser.add_argument(
        "--platform",
        action="append",
        default=[],
        help=f"platform to serve (repeatable; default: this machine's, {host_platform_name()})",
    )
    parser.add_argument("--store", help="store URL; default: the one the coordinator announces")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=default_cache_dir(),
        help="repodata cache (default %(default)s)",
    )
    parser.add_argument(
        "--agent-id",
        default=f"{socket.gethostname()}-{os.getpid()}",
        help="name in logs and descriptions (default HOST-PID)",
    )
    parser.add_argument("--slots", type=int, default=1, help="jobs run at once (default 1)")
    parser.add_argument(
        "--channel-alias",
        default=os.environ.get("ENVD_CHANNEL_ALIAS", DEFAULT_CHANNEL_ALIAS),
        help="base URL for channel names (default %(default)s)",
    )
    parser.add_argument(
        "--solve-timeout",
        type=float,
        default=300.0,
        help="seconds one solve may take (default %(default)s)",
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--version", action="version", version=f"envd-agent {envd.__version__}")
    args = parser.parse_args(argv)
    if not args.coordinator:
        parser.error("no coordinator: pass --coordinator HOST:PORT or set ENVD_COORDINATOR")
    return args


def build_connection(
    *, target: str, identity: AgentIdentity, cache_dir: Path, channel_alias: str,
    solve_timeout: float, store_override: str | None,
) -> AgentConnection:  # fmt: skip
    """The same wiring serves `envd-agent` and the embedded default's in-process agents."""
    resolver = CondaResolver(cache_dir, channel_alias, solve_timeout)

    def make_runner(store_url: str) -> JobRunner:
        store = open_store(store_override or store_url)
        return JobRunner(
            resolver=resolver, catalog=Catalog(store), clock=SystemClock(),
            agent_id=identity.agent_id, host=identity.host,
        )  # fmt: skip

    return AgentConnection(target, identity, make_runner)


async def run(args: argparse.Namespace) -> None:
    platforms = platforms_tuple(check_platform(p) for p in args.platform or [host_platform_name()])
    identity = AgentIdentity(args.agent_id, socket.gethostname(), platforms, max(1, args.slots))
    connection = build_connection(
        target=args.coordinator, identity=identity, cache_dir=args.cache_dir,
        channel_alias=args.channel_alias, solve_timeout=args.solve_timeout,
        store_override=args.store,
    )  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await connection.run_forever(stop)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging(args.log_level.upper())
    try:
        asyncio.run(run(args))
    except EnvdError as err:
        report_error(err.message, err.hint)
        raise SystemExit(err.exit_code) from err


if __name__ == "__main__":
    main()
