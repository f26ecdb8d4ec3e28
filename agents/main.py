"""`envd-agent`: read options, build the resolver and runner, connect to the coordinator."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc

import envd
from envd.catalog import Catalog
from envd.channels import DEFAULT_CHANNEL_ALIAS
from envd.clock import SystemClock
from envd.config_file import config_path, read_config_file
from envd.errors import ConfigError, EnvdError
from envd.logs import add_log_format_argument, configure_logging, report_error
from envd.metrics import add_metrics_argument, serve_metrics
from envd.platforms import check_platform, host_platform_name
from envd.store.url import open_store
from envd.tokens import AioTokenInterceptor, channel_credentials

from .archive_cache import DEFAULT_CONCURRENCY, DEFAULT_UPLOAD_TIMEOUT, ArchiveCache
from .build_prefix import DEFAULT_KEEP
from .conda_resolver import DEFAULT_REPODATA_TIMEOUT, DEFAULT_SOLVE_TIMEOUT, CondaResolver
from .connection import AgentConnection, AgentIdentity, platforms_tuple
from .credentials import PLAIN_HTTP_ENV, TOKEN_ENV, ChannelCredentials
from .fetch import DEFAULT_ATTEMPTS, Fetcher
from .fetch import DEFAULT_TIMEOUT as DEFAULT_FETCH_TIMEOUT
from .job_runner import DEFAULT_JOB_TIMEOUT, JobRunner
from .metrics import AgentMetrics, MeteredFetcher, MeteredStore, MeteredTransmuter
from .mixed_resolver import MixedResolver
from .native_build import DEFAULT_BUILD_TIMEOUT, NativeBuilds
from .pypi_names import PypiNames, read_name_map
from .pypi_resolver import PypiResolver
from .transmute import DEFAULT_LEVEL, MAX_LEVEL, MIN_LEVEL, Transmuter


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "envd" / "agent"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="envd-agent",
        description="An envd agent: dials out to the coordinator, leases jobs for its platforms, "
        "resolves them with py-rattler (conda) or uv (PyPI), caches their archives and writes descriptions to the "
        "store. Private channels: credentials from $NETRC (default ~/.netrc) or "
        f"${TOKEN_ENV} (`HOST[:PORT]=TOKEN,...`; `HOST` is port 443), sent over https only "
        "unless the host is marked plain-http.",
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
        help="platform to serve (repeatable; default: the native platform, this machine's "
        f"{host_platform_name()})",
    )
    parser.add_argument(
        "--native-platform",
        metavar="PLATFORM",
        help="the platform this machine runs, detected by default "
        f"({host_platform_name()}); only an agent native to a platform builds wheels for it "
        "(PyPI packages without a wheel). Overriding it is for tests and emulation: it changes "
        "no compiler, and a wheel whose tags don't fit the target is still refused",
    )
    parser.add_argument(
        "--build-python",
        action="append",
        default=[],
        metavar="PATH",
        help="a host python to build wheels with, for its version (repeatable; this agent's "
        "own python is one too, unless `--no-own-build-python`)",
    )
    parser.add_argument(
        "--no-own-build-python",
        dest="own_build_python",
        action="store_false",
        help="do not build wheels with this agent's own python: only with the `--build-python` "
        "ones (none: the agent builds no PyPI-only spec's wheels, and the coordinator routes "
        "those to agents that advertise the python a job needs; a mixed spec's are built with "
        "its own conda python)",
    )
    parser.add_argument(
        "--build-timeout",
        type=_seconds,
        metavar="SECONDS",
        default=DEFAULT_BUILD_TIMEOUT,
        help="seconds one native wheel build may take before it is killed (default %(default)s)",
    )
    parser.add_argument(
        "--build-prefixes",
        type=_count,
        metavar="N",
        default=DEFAULT_KEEP,
        help="mixed specs' wheels are built with the environment's own conda python, installed "
        "into a build prefix under --cache-dir (~100-300 MB each): how many of them are kept "
        "for reuse between builds, least recently used removed first; 0 removes each after "
        "its build (default %(default)s)",
    )
    parser.add_argument("--store", help="store URL; default: the one the coordinator announces")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=default_cache_dir(),
        help="repodata cache; archives in flight wait in its `archives-tmp/` (default %(default)s)",
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
        "--repodata-timeout",
        type=_seconds,
        metavar="SECONDS",
        default=DEFAULT_REPODATA_TIMEOUT,
        help="seconds loading a job's repodata may take, every channel and retry included "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--solve-timeout",
        type=_seconds,
        metavar="SECONDS",
        default=DEFAULT_SOLVE_TIMEOUT,
        help="seconds one solve may take, once the repodata is loaded (default %(default)s)",
    )
    parser.add_argument(
        "--fetch-timeout",
        type=_seconds,
        metavar="SECONDS",
        default=DEFAULT_FETCH_TIMEOUT,
        help="seconds an archive download may wait for data; it is tried "
        f"{DEFAULT_ATTEMPTS} times (default %(default)s)",
    )
    parser.add_argument(
        "--upload-timeout",
        type=_seconds,
        metavar="SECONDS",
        default=DEFAULT_UPLOAD_TIMEOUT,
        help="seconds one archive's upload to the store may take (default %(default)s)",
    )
    parser.add_argument(
        "--job-timeout",
        type=_seconds,
        metavar="SECONDS",
        default=DEFAULT_JOB_TIMEOUT,
        help="seconds a whole job (resolve, archives, description) may take (default %(default)s)",
    )
    parser.add_argument(
        "--transmute-level",
        type=_zstd_level,
        default=DEFAULT_LEVEL,
        help="zstd level of the `.conda` made from a `.tar.bz2`-only package "
        f"({MIN_LEVEL}-{MAX_LEVEL}, default %(default)s)",
    )
    parser.add_argument(
        "--fetch-concurrency",
        type=_positive,
        default=DEFAULT_CONCURRENCY,
        help="archives fetched, verified and uploaded at once (default %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="processes transmuting archives (default: one per CPU)",
    )
    parser.add_argument(
        "--tls-ca",
        default=os.environ.get("ENVD_TLS_CA"),
        metavar="PEM",
        help="talk TLS to the coordinator, trusting this CA (default $ENVD_TLS_CA; the token "
        "comes from $ENVD_TOKEN or `token` in the envd config file)",
    )
    parser.add_argument(
        "--plain-http-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="let channel credentials go to `http://HOST[:PORT]` (default port 80) in plain "
        f"text (repeatable; also ${PLAIN_HTTP_ENV}, comma-separated); by default they are sent "
        "over https only",
    )
    parser.add_argument(
        "--pypi-name-map",
        type=Path,
        metavar="FILE",
        default=None,
        help="JSON object of conda name -> PyPI name (or null: provides none), for mixed "
        "environments: which PyPI packages a conda package provides; overrides the packaged "
        "grayskull mapping, which overrides the conda name itself",
    )
    add_metrics_argument(parser)
    parser.add_argument("--log-level", default="INFO")
    add_log_format_argument(parser)
    parser.add_argument("--version", action="version", version=f"envd-agent {envd.__version__}")
    args = parser.parse_args(argv)
    if not args.coordinator:
        parser.error("no coordinator: pass --coordinator HOST:PORT or set ENVD_COORDINATOR")
    return args


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"`{text}` is not a positive integer")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number >= 0")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"`{text}` is not a positive number of seconds")
    return value


def _zstd_level(text: str) -> int:
    value = int(text)
    if not MIN_LEVEL <= value <= MAX_LEVEL:
        raise argparse.ArgumentTypeError(f"`{text}` is outside {MIN_LEVEL}..{MAX_LEVEL}")
    return value


def build_connection(
    *, target: str, identity: AgentIdentity, cache_dir: Path, channel_alias: str,
    solve_timeout: float, store_override: str | None, transmute_level: int = DEFAULT_LEVEL,
    fetch_concurrency: int = DEFAULT_CONCURRENCY, workers: int | None = None,
    credentials: ChannelCredentials | None = None,
    repodata_timeout: float = DEFAULT_REPODATA_TIMEOUT,
    fetch_timeout: float = DEFAULT_FETCH_TIMEOUT,
    upload_timeout: float = DEFAULT_UPLOAD_TIMEOUT,
    job_timeout: float = DEFAULT_JOB_TIMEOUT,
    tls: grpc.ChannelCredentials | None = None,
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    plain_http_hosts: Sequence[str] = (),
    metrics: AgentMetrics | None = None,
    pypi_names: PypiNames | None = None,
    build_pythons: Mapping[str, str] | None = None,
    build_timeout: float = DEFAULT_BUILD_TIMEOUT,
    build_prefixes: int = DEFAULT_KEEP,
) -> AgentConnection:  # fmt: skip
    """The same wiring serves `envd-agent` and the embedded default's in-process agents.
    Channel credentials default to the process environment (netrc, `ENVD_CHANNEL_TOKEN`,
    `ENVD_PLAIN_HTTP_HOSTS`) and `plain_http_hosts`; `metrics` (off when None) times solves,
    builds and every archive's fetch, transmute and upload; `pypi_names` (default: the
    packaged mapping) says which PyPI packages a conda package provides in mixed specs.
    Native wheel builds use `build_pythons` (version → interpreter; default: this process's
    python) for the identity's native platform."""
    credentials = credentials or ChannelCredentials.from_environment(
        os.environ, plain_http=plain_http_hosts
    )
    resolver = CondaResolver(
        cache_dir, channel_alias, solve_timeout, credentials.authorization,
        repodata_timeout=repodata_timeout,
    )  # fmt: skip
    names = pypi_names or PypiNames()
    pythons = host_pythons(()) if build_pythons is None else dict(build_pythons)
    if not identity.native_platform:  # e.g. the embedded default's agents: this machine's
        identity = replace(identity, native_platform=host_platform_name())
    # it advertises exactly the pythons it builds with: the coordinator routes builds by them
    identity = replace(identity, build_pythons=tuple(pythons))
    if metrics is None:
        fetcher = Fetcher(credentials, timeout=fetch_timeout)
        transmuter = Transmuter(level=transmute_level, workers=workers)
    else:
        fetcher = MeteredFetcher(credentials, timeout=fetch_timeout, metrics=metrics)
        transmuter = MeteredTransmuter(level=transmute_level, workers=workers, metrics=metrics)

    def make_runner(store_url: str) -> JobRunner:
        store = open_store(store_override or store_url)
        if metrics is not None:
            store = MeteredStore(store, metrics)
        archives = ArchiveCache(
            store, fetcher, transmuter, scratch_dir=cache_dir / "archives-tmp",
            concurrency=fetch_concurrency, upload_timeout=upload_timeout,
        )  # fmt: skip
        builds = NativeBuilds(
            store, fetcher, cache_dir, agent_id=identity.agent_id,
            native_platform=identity.native_platform, pythons=pythons,
            build_timeout=build_timeout, credentials=credentials, prefixes_kept=build_prefixes,
        )  # fmt: skip
        pypi_resolver = PypiResolver(cache_dir, resolve_timeout=solve_timeout, store=store,
                                     credentials=credentials, builds=builds)  # fmt: skip
        mixed_resolver = MixedResolver(resolver, pypi_resolver, names)
        return JobRunner(
            resolver=resolver, catalog=Catalog(store), archives=archives, clock=SystemClock(),
            agent_id=identity.agent_id, host=identity.host, job_timeout=job_timeout,
            pypi_resolver=pypi_resolver, mixed_resolver=mixed_resolver, metrics=metrics,
        )  # fmt: skip

    return AgentConnection(
        target, identity, make_runner, credentials=tls, interceptors=interceptors
    )


async def run(args: argparse.Namespace) -> None:
    native = check_platform(args.native_platform or host_platform_name())
    platforms = platforms_tuple(check_platform(p) for p in args.platform or [native])
    pythons = host_pythons(args.build_python, own=args.own_build_python)
    identity = AgentIdentity(args.agent_id, socket.gethostname(), platforms, max(1, args.slots),
                             native, tuple(pythons))  # fmt: skip
    metrics = AgentMetrics() if args.metrics_listen else None
    connection = build_connection(
        target=args.coordinator, identity=identity, cache_dir=args.cache_dir,
        channel_alias=args.channel_alias, solve_timeout=args.solve_timeout,
        store_override=args.store, transmute_level=args.transmute_level,
        fetch_concurrency=args.fetch_concurrency, workers=args.workers,
        repodata_timeout=args.repodata_timeout, fetch_timeout=args.fetch_timeout,
        upload_timeout=args.upload_timeout, job_timeout=args.job_timeout,
        **coordinator_access(args.tls_ca),
        plain_http_hosts=args.plain_http_host, metrics=metrics,
        pypi_names=PypiNames(read_name_map(args.pypi_name_map) if args.pypi_name_map else None),
        build_pythons=pythons, build_timeout=args.build_timeout,
        build_prefixes=args.build_prefixes,
    )  # fmt: skip
    endpoint = serve_metrics(metrics.registry, args.metrics_listen) if metrics else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await connection.run_forever(stop)
    finally:
        if endpoint is not None:
            endpoint.stop()


def host_pythons(paths: Sequence[str], *, own: bool = True) -> dict[str, str]:
    """Python version ("3.11") → interpreter: this process's python (unless not `own`), then
    each `--build-python` (asked for its version; one that does not run is a `ConfigError`)."""
    found = {f"{sys.version_info[0]}.{sys.version_info[1]}": sys.executable} if own else {}
    for path in paths:
        try:
            done = subprocess.run(
                [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=30, check=True,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as err:
            raise ConfigError(
                f"failed to use `--build-python {path}`: it does not run: {err}",
                hint="pass the path of a python interpreter",
            ) from err
        found.setdefault(done.stdout.strip(), path)
    return found


def coordinator_access(tls_ca: str | None) -> dict[str, Any]:
    """TLS and the bearer token the agent shows the coordinator: `ENVD_TOKEN`, else `token`
    in the envd config file (the same file the client reads)."""
    path = config_path(os.environ)
    values = read_config_file(path, explicit=bool(os.environ.get("ENVD_CONFIG")))
    token = os.environ.get("ENVD_TOKEN") or values.get("token")
    ca, where = (tls_ca, "--tls-ca / ENVD_TLS_CA") if tls_ca else (values.get("tls_ca"), str(path))
    return {
        "tls": channel_credentials(ca, where),
        "interceptors": (AioTokenInterceptor(token),) if token else (),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging(args.log_level.upper(), args.log_format)
    try:
        asyncio.run(run(args))
    except EnvdError as err:
        report_error(err.message, err.hint)
        raise SystemExit(err.exit_code) from err


if __name__ == "__main__":
    main()
