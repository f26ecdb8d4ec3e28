"""`envd-client`: the command line over the typed API (envd.client.api)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import envd
from envd.errors import EnvdError, EnvironmentNotFoundError, InvalidSpecError, error_to_dict
from envd.ids import is_id
from envd.ids import req_id as compute_req_id
from envd.logs import configure_logging, report_error
from envd.platforms import check_platform, host_platform_name
from envd.spec_input import LoadedSpec, load_spec, virtual_packages_from_environ

from . import create, render
from .api import EnvdClient
from .config import ClientConfig, load_config
from .session import open_client
from .store_view import client_store, formats_present

EPILOG = """\
Without --coordinator (or ENVD_COORDINATOR, or `coordinator` in ~/.config/envd/config.toml),
envd-client runs the coordinator and an agent in-process, with state and store in ./.envd/.
Exit codes: 0 ok, 1 internal, 2 bad input, 3 resolution failed, 4 job/agent, 5 coordinator, 6 store.
"""


def _spec_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("spec")
    group.add_argument(
        "-f",
        "--file",
        action="append",
        default=[],
        type=Path,
        dest="files",
        help="environment.yml (repeatable)",
    )
    group.add_argument(
        "-r",
        "--requirements",
        action="append",
        default=[],
        type=Path,
        help="requirements.txt (repeatable)",
    )
    group.add_argument(
        "-p",
        "--package",
        action="append",
        default=[],
        dest="packages",
        metavar="SPEC",
        help="conda MatchSpec, e.g. 'numpy>=1.20' (repeatable)",
    )
    group.add_argument(
        "--pypi", action="append", default=[], metavar="SPEC", help="PyPI requirement (repeatable)"
    )
    group.add_argument("--python", help="python version or constraint, e.g. 3.11")
    group.add_argument(
        "-c",
        "--channel",
        action="append",
        default=[],
        dest="channels",
        help="channel name, URL or folder, in priority order (repeatable)",
    )
    group.add_argument(
        "--virtual-package",
        action="append",
        default=[],
        metavar="NAME=VERSION",
        help="override a virtual package, e.g. __glibc=2.28 (repeatable; "
        "CONDA_OVERRIDE_GLIBC/OSX/CUDA are read too)",
    )
    group.add_argument(
        "--arch",
        action="append",
        default=[],
        metavar="PLATFORM",
        help="target platform (repeatable; default: the files' `platforms:`, "
        f"else this machine's, {host_platform_name()})",
    )
    group.add_argument("--json", action="store_true", help="print exactly one JSON document")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="envd-client",
        description="Resolve pinned, cached environments for every platform you deploy to.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--coordinator", help="HOST:PORT or unix:PATH of envd-daemon")
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    parser.add_argument("--version", action="version", version=f"envd-client {envd.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    resolve = commands.add_parser("resolve", help="resolve a spec for one or more platforms")
    _spec_options(resolve)
    resolve.add_argument("--force", action="store_true", help="resolve again despite a default")
    resolve.add_argument(
        "--no-wait",
        action="store_true",
        help="return once accepted; prints job ids for `envd-client wait`",
    )
    resolve.add_argument(
        "--no-archives",
        action="store_true",
        help="resolve and describe only; do not cache package archives",
    )

    spec = commands.add_parser("spec", help="print what envd understood, without resolving")
    _spec_options(spec)

    show = commands.add_parser("show", help="show an environment by req_id, full_id or both")
    show.add_argument("id", metavar="ID", help="req_id, full_id, or req_id:full_id")
    show.add_argument(
        "--arch",
        action="append",
        default=[],
        metavar="PLATFORM",
        help="platform(s) of a req_id (default: every platform resolved)",
    )
    show.add_argument("--json", action="store_true")

    create = commands.add_parser(
        "create", help="materialize an environment from the store's cached archives alone"
    )
    create.add_argument("id", metavar="ID", help="req_id (with --arch), full_id, or req_id:full_id")
    create.add_argument(
        "--arch",
        default=host_platform_name(),
        metavar="PLATFORM",
        help="platform of a req_id; must be this machine's (default %(default)s)",
    )
    create.add_argument("--prefix", required=True, type=Path, help="directory to create it in")
    create.add_argument("--force", action="store_true", help="install into a non-empty prefix")
    create.add_argument("--json", action="store_true")

    listing = commands.add_parser("list", help="list environments in the store")
    listing.add_argument("req_id", nargs="?", default="", help="only this req_id")
    listing.add_argument("--json", action="store_true")

    wait = commands.add_parser("wait", help="re-attach to jobs printed by `resolve --no-wait`")
    wait.add_argument("job_ids", nargs="+", metavar="JOB")
    wait.add_argument("--json", action="store_true")
    return parser


def load_request(args: argparse.Namespace) -> tuple[LoadedSpec, list[str]]:
    overrides = virtual_packages_from_environ(os.environ) + list(args.virtual_package)
    loaded = load_spec(
        env_files=args.files,
        requirement_files=args.requirements,
        packages=args.packages,
        pypi=args.pypi,
        python=args.python,
        channels=args.channels,
        virtual_packages=overrides,
    )
    platforms = args.arch or list(loaded.platforms) or [host_platform_name()]
    return loaded, [check_platform(p) for p in platforms]


def cmd_spec(args: argparse.Namespace, config: ClientConfig) -> int:
    loaded, platforms = load_request(args)
    spec = loaded.spec
    document = {
        "req_id": compute_req_id(spec),
        "env_type": str(spec.env_type),
        "platforms": {
            p: {"conda": spec.conda_specs_for(p), "pypi": spec.pypi_requirements_for(p)}
            for p in platforms
        },
        "canonical": spec.to_canonical(),
    }
    if args.json:
        render.print_json(document)
        return 0
    print(f"req_id: {document['req_id']}\nenv type: {document['env_type']}")
    for platform, deps in document["platforms"].items():  # type: ignore[attr-defined]
        print(f"{platform}:")
        for line in deps["conda"]:
            print(f"  conda  {line}")
        for line in deps["pypi"]:
            print(f"  pypi   {line}")
    return 0


def cmd_resolve(args: argparse.Namespace, config: ClientConfig) -> int:
    loaded, platforms = load_request(args)
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    with open_client(config) as client:
        result = client.resolve(
            loaded.spec, platforms, force=args.force, no_wait=args.no_wait,
            no_archives=args.no_archives, on_event=render.ProgressPrinter(),
        )  # fmt: skip
    return _finish(result, args.json)


def cmd_wait(args: argparse.Namespace, config: ClientConfig) -> int:
    with open_client(config) as client:
        result = client.wait(args.job_ids, on_event=render.ProgressPrinter())
    return _finish(result, args.json)


def _finish(result: Any, as_json: bool) -> int:
    if as_json:
        render.print_json(render.result_json(result))
    else:
        sys.stdout.write(render.result_text(result))
    errors = [e.error for e in result.events.values() if e.error is not None]
    return errors[0].exit_code if errors else (3 if result.failed else 0)


def cmd_show(args: argparse.Namespace, config: ClientConfig) -> int:
    with open_client(config) as client:
        found = _lookup(client, args.id, args.arch)
        store = client_store(config, client)
        present = [formats_present(d, store) for d, _ in found]
    if args.json:
        render.print_json([
            {"description": d, "is_default": is_default, "formats_in_store": p}
            for (d, is_default), p in zip(found, present, strict=True)
        ])  # fmt: skip
    else:
        sys.stdout.write("\n".join(
            render.environment_text(d, "", is_default, p)
            for (d, is_default), p in zip(found, present, strict=True)
        ))  # fmt: skip
    return 0


def _lookup(
    client: EnvdClient, ident: str, arch: Sequence[str]
) -> list[tuple[dict[str, Any], bool]]:
    full_id = ident.partition(":")[2]
    if full_id:
        return [client.get_environment(full_id=full_id)]
    return _show_single(client, ident, arch)


def _show_single(
    client: EnvdClient, ident: str, arch: Sequence[str]
) -> list[tuple[dict[str, Any], bool]]:
    if not is_id(ident):
        raise InvalidSpecError(
            f"`{ident}` is not an environment id",
            hint="give a req_id or full_id (40 hex characters), or `req_id:full_id`",
        )
    summaries = client.list_environments(req_id=ident)
    if summaries:  # it is a req_id: show its default per platform
        platforms = arch or sorted({s.platform for s in summaries})
        return [client.get_environment(req_id=ident, platform=p) for p in platforms]
    try:
        return [client.get_environment(full_id=ident)]
    except EnvironmentNotFoundError as err:
        raise EnvironmentNotFoundError(
            f"no environment with req_id or full_id `{ident}`",
            hint="`envd-client list` shows what the store holds",
        ) from err


def cmd_list(args: argparse.Namespace, config: ClientConfig) -> int:
    with open_client(config) as client:
        summaries = client.list_environments(req_id=args.req_id)
    if args.json:
        render.print_json({"environments": [
            {"req_id": s.req_id, "platform": s.platform, "full_id": s.full_id,
             "resolved_at": s.resolved_at, "is_default": s.is_default}
            for s in summaries
        ]})  # fmt: skip
    else:
        sys.stdout.write(render.summaries_text(summaries))
    return 0


def cmd_create(args: argparse.Namespace, config: ClientConfig) -> int:
    check_platform(args.arch)
    with open_client(config) as client:
        (description, _), *_ = _lookup(client, args.id, [args.arch])
        prefix = args.prefix.resolve()
        create.check_target(description, prefix, force=args.force)
        store = client_store(config, client)
        cache = client_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="envd-create-", dir=cache) as scratch:
            archives = create.fetch_archives(description, store, Path(scratch), _stderr_line)
            _stderr_line(f"installing {len(archives)} packages into {prefix}")
            create.install(archives, prefix, description["platform"], cache / "rattler")
    document = {
        "prefix": str(prefix),
        "req_id": description["req_id"],
        "full_id": description["full_id"],
        "platform": description["platform"],
        "packages": [a.filename for a in archives],
    }
    if args.json:
        render.print_json(document)
    else:
        print(
            f"created {description['req_id']}:{description['full_id']} "
            f"({description['platform']}, {len(archives)} packages) in {prefix}"
        )
    return 0


def client_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "envd" / "client"


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr)


COMMANDS = {"create": cmd_create, "resolve": cmd_resolve, "spec": cmd_spec, "show": cmd_show, "list": cmd_list,
            "wait": cmd_wait}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    configure_logging(logging.INFO if args.verbose else logging.WARNING)
    if not args.verbose:  # the embedded daemon and agent report through events, not logs
        for name in ("envd.daemon", "envd.agent"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        config = load_config(coordinator_flag=args.coordinator)
        code = COMMANDS[args.command](args, config)
    except EnvdError as err:
        if getattr(args, "json", False):
            render.print_json({"error": error_to_dict(err)})
        report_error(err.message, err.hint)
        code = err.exit_code
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


__all__ = ["main"]
