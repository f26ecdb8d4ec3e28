"""`envd-daemon`: read options, start the coordinator, serve until stopped."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path

import grpc

import envd
from envd.channel_policy import ChannelPolicy
from envd.clock import SystemClock, random_id
from envd.errors import EnvdError, StateError
from envd.logs import JobDirectory, add_log_format_argument, configure_logging, report_error
from envd.metrics import add_metrics_argument, serve_metrics

from .access import add_access_options, hash_token_command, open_access
from .interceptors import MetricsInterceptor
from .job_log import chain, directory_hook
from .jobs import JobHook, no_hook
from .metrics import DaemonMetrics
from .replicas_pg import PostgresReplicas
from .server import start_daemon
from .settings import DEFAULT_MAX_CONCURRENT_CALLS, CoordinatorSettings
from .state import JobState
from .state_postgres import PostgresJobState, display_url, is_postgres_url
from .state_sqlite import SqliteJobState, move_aside


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="envd-daemon",
        description="The envd coordinator: answers cache hits from the store, dedupes identical "
        "requests onto one job, and leases jobs to agents that serve each platform.",
    )
    parser.add_argument(
        "--listen",
        default="127.0.0.1:50051",
        help="HOST:PORT (port 0 picks a free one) or unix:PATH (default %(default)s)",
    )
    parser.add_argument(
        "--store",
        default=os.environ.get("ENVD_STORE", "./.envd/store"),
        help="store URL: file:///path or a folder (default: $ENVD_STORE or %(default)s)",
    )
    parser.add_argument(
        "--state",
        default="./.envd/state.sqlite",
        help="where jobs and leases live: a SQLite file for one coordinator, or a "
        "`postgresql://USER@HOST/DB` URL that several replicas share (default %(default)s)",
    )
    parser.add_argument(
        "--allow-channel",
        action="append",
        default=[],
        metavar="PATTERN",
        help="only channels matching this pattern (fnmatch over the name or URL, e.g. "
        "`https://conda.example.com/*`; repeatable); default: any http(s) channel and any "
        "channel name",
    )
    parser.add_argument(
        "--allow-pypi-index",
        action="append",
        default=[],
        metavar="PATTERN",
        help="only PyPI indexes, find-links locations and direct requirement URLs matching "
        "this pattern (fnmatch over the URL, e.g. `https://pypi.example.com/*`; repeatable); "
        "default: any http(s) URL",
    )
    parser.add_argument(
        "--allow-local-channels",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="allow `file://` and folder channels under DIR (repeatable); default: none",
    )
    parser.add_argument(
        "--recover",
        action="store_true",
        help="if the state file is damaged, move it aside and start with a fresh one (jobs in "
        "flight are lost; resolved environments live in the store)",
    )
    parser.add_argument(
        "--lease-ttl",
        type=float,
        default=30.0,
        help="seconds a lease lives without a heartbeat (default %(default)s)",
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=float,
        default=5.0,
        help="seconds between agent heartbeats (default %(default)s)",
    )
    parser.add_argument(
        "--no-agent-timeout",
        type=float,
        default=300.0,
        help="seconds a job waits for an agent serving its platform before it "
        "fails (default %(default)s)",
    )
    parser.add_argument(
        "--max-concurrent-calls",
        type=_positive,
        default=DEFAULT_MAX_CONCURRENT_CALLS,
        metavar="N",
        help="open gRPC calls (Resolve and Wait streams, agent streams) past which new ones are "
        "refused with RESOURCE_EXHAUSTED; clients retry with backoff (default %(default)s)",
    )
    parser.add_argument(
        "--ready-file",
        type=Path,
        help="write the bound address here once serving (for scripts and tests)",
    )
    add_access_options(parser)
    add_metrics_argument(parser)
    parser.add_argument("--log-level", default="INFO")
    add_log_format_argument(parser)
    parser.add_argument("--version", action="version", version=f"envd-daemon {envd.__version__}")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("TLS needs both --tls-cert and --tls-key")
    return args


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"`{text}` is not a positive integer")
    return value


async def serve(args: argparse.Namespace, directory: JobDirectory | None = None) -> None:
    settings = CoordinatorSettings(
        store_url=args.store,
        lease_ttl=args.lease_ttl,
        heartbeat_interval=args.heartbeat_interval,
        no_agent_timeout=args.no_agent_timeout,
        sweep_interval=min(1.0, args.lease_ttl / 4),
        channel_policy=ChannelPolicy.of(
            args.allow_channel, args.allow_local_channels, allow_pypi=args.allow_pypi_index
        ),
        max_concurrent_calls=args.max_concurrent_calls,
    )
    access = open_access(args)
    metrics, hook = observability(args, directory)
    # metrics first: it also counts the calls auth refuses
    interceptors: list[grpc.aio.ServerInterceptor] = (
        [MetricsInterceptor(metrics)] if metrics else []
    )
    interceptors += access.interceptors
    state, replicas = open_shared_or_local_state(args, settings)
    endpoint = None
    try:
        # every family is listed from the first scrape; the live gauges once the daemon runs
        endpoint = serve_metrics(metrics.registry, args.metrics_listen) if metrics else None
        daemon = await start_daemon(
            listen=args.listen, store_url=args.store, state=state, settings=settings,
            interceptors=interceptors, credentials=access.credentials,
            hook=hook, replicas=replicas,
        )  # fmt: skip
    except BaseException:
        await state.close()
        if endpoint is not None:
            endpoint.stop()
        raise
    where = display_url(args.state) if replicas is not None else args.state
    logging.getLogger("envd.daemon").info("state %s", where)
    if metrics is not None:
        await metrics.watch(daemon.registry, state, shared=replicas is not None)
    if args.ready_file:
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(daemon.address)
        tmp.replace(args.ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if access.tokens is not None:
        loop.add_signal_handler(signal.SIGHUP, access.tokens.reload)
    waits = [asyncio.ensure_future(e.wait()) for e in (stop, replicas and replicas.lost) if e]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for waiting in waits:
        waiting.cancel()
    logging.getLogger("envd.daemon").info("shutting down: open requests re-attach by job id")
    await daemon.stop(grace=2.0)
    if endpoint is not None:
        endpoint.stop()
    logging.getLogger("envd.daemon").info("stopped")
    if replicas is not None and replicas.lost.is_set():
        raise StateError(
            f"lost the coordinator state `{where}` for over {args.lease_ttl:g} s; stopped so "
            "that clients and agents move to another replica",
            hint="check the database and this host's route to it; restart this replica",
        )


def observability(
    args: argparse.Namespace, directory: JobDirectory | None
) -> tuple[DaemonMetrics | None, JobHook]:
    """The metrics (`--metrics-listen`) and the JSON log's job directory, on the job hook."""
    metrics = DaemonMetrics(clock=SystemClock()) if args.metrics_listen else None
    hooks: list[JobHook] = [metrics.hook] if metrics else []
    if directory is not None:
        hooks.append(directory_hook(directory))
    return metrics, chain(*hooks) if hooks else no_hook


def open_shared_or_local_state(
    args: argparse.Namespace, settings: CoordinatorSettings
) -> tuple[JobState, PostgresReplicas | None]:
    """A `postgresql://` URL: the state replicas share, and this replica among them; else a
    SQLite file this coordinator alone uses."""
    if not is_postgres_url(args.state):
        return open_state(Path(args.state), recover=args.recover), None
    state = PostgresJobState(args.state, random_id, replica_id=random_id())
    return state, PostgresReplicas(state, clock=SystemClock(), settings=settings)


def open_state(path: Path, *, recover: bool) -> SqliteJobState:
    try:
        return SqliteJobState(path, random_id)
    except StateError:
        if not recover or not path.exists():
            raise
    aside = move_aside(path, time.time())
    logging.getLogger("envd.daemon").warning(
        "state `%s` was damaged: moved to `%s`, starting with a fresh state", path, aside
    )
    return SqliteJobState(path, random_id)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["hash-token"]:
        raise SystemExit(hash_token_command(argv[1:]))
    args = parse_args(argv)
    directory = JobDirectory() if args.log_format == "json" else None
    configure_logging(args.log_level.upper(), args.log_format, directory)
    try:
        asyncio.run(serve(args, directory))
    except EnvdError as err:
        report_error(err.message, err.hint)
        raise SystemExit(err.exit_code) from err
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from err


if __name__ == "__main__":
    main()
