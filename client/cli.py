"""`envd-client`: the command line over the typed API (envd.client.api).

Each command imports what it needs when it runs: `--version` and `--help` import almost
nothing, and a cache hit of the embedded default reads the store without starting a daemon.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from .parser import build_parser

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from envd.aliases import Alias
    from envd.errors import EnvdError
    from envd.spec_input import LoadedSpec

    from .api import ResolveResult
    from .config import ClientConfig
    from .local_sources import PackedSpec

    Pointed = tuple[Alias | None, EnvdError | None]
    Command = Callable[[argparse.Namespace, ClientConfig], int]
    from .progress_view import ProgressPrinter


def load_request(args: argparse.Namespace) -> tuple[LoadedSpec, list[str]]:
    from envd.platforms import check_platform, host_platform_name
    from envd.spec_input import load_spec, virtual_packages_from_environ

    overrides = virtual_packages_from_environ(os.environ) + list(args.virtual_package)
    loaded = load_spec(
        env_files=args.files,
        requirement_files=args.requirements,
        packages=args.packages,
        pypi=args.pypi,
        python=args.python,
        channels=args.channels,
        virtual_packages=overrides,
        exclude_newer=args.exclude_newer,
        find_links=args.find_links,
    )
    platforms = args.arch or list(loaded.platforms) or [host_platform_name()]
    return loaded, [check_platform(p) for p in platforms]


def cmd_spec(args: argparse.Namespace, config: ClientConfig) -> int:
    from envd.ids import req_id as compute_req_id

    from . import render
    from .local_sources import packed_sources

    loaded, platforms = load_request(args)
    _warn(loaded.warnings)
    with packed_sources(loaded.spec, config.home / "cache" / "sources-tmp") as packed:
        spec = packed.spec  # local sources count by content: packed, not uploaded
        _say_packed(packed, args)
    document = {
        "req_id": compute_req_id(spec),
        "env_type": str(spec.env_type),
        "platforms": {
            p: {"conda": spec.conda_specs_for(p), "pypi": spec.pypi_requirements_for(p)}
            for p in platforms
        },
        "canonical": spec.to_canonical(),
        "sources": [source.to_json() for source in packed.sources],
    }
    if args.json:
        render.print_json(document)
        return 0
    from envd.redaction import mask_text

    print(f"req_id: {document['req_id']}\nenv type: {document['env_type']}")
    for platform, deps in document["platforms"].items():  # type: ignore[attr-defined]
        print(f"{platform}:")
        for line in deps["conda"]:
            print(f"  conda  {line}")
        for line in deps["pypi"]:
            print(f"  pypi   {mask_text(line)}")
    return 0


def cmd_resolve(args: argparse.Namespace, config: ClientConfig) -> int:
    from envd.spec_input import require_channels

    alias = _alias_to_point(args)
    use_latest = _use_latest(args, config)
    if args.from_lock is not None:
        from .lock_readers import locked_request

        spec, platforms = locked_request(args)
    else:
        if getattr(args, "lock_environment", None):
            from envd.errors import InvalidSpecError

            raise InvalidSpecError(
                "`--lock-environment` goes with `--from-lock`",
                hint="import a pixi.lock's environment with `--from-lock FILE "
                "--lock-environment NAME`",
            )
        loaded, platforms = load_request(args)
        require_channels(loaded.spec)
        _warn(loaded.warnings)
        spec = loaded.spec
    rewrite = None
    from .local_sources import PackedSpec, packed_sources

    with packed_sources(spec, config.home / "cache" / "sources-tmp") as packed:
        _say_packed(packed, args)
        if args.lock is not None or args.locked or args.frozen or args.no_lock:
            from .lock_use import lock_request

            # the lock is checked against local and git sources by content (packed)
            planned = lock_request(args, packed.spec, platforms, sys.argv[1:])
            platforms, rewrite = planned.platforms, planned.rewrite
            if planned.spec is not packed.spec:  # the lock's own packages, used as they are
                packed = PackedSpec(planned.spec, ())
        return _resolve(packed, platforms, alias, use_latest, rewrite, args, config)


def _resolve(
    packed: PackedSpec, platforms: list[str], alias: str | None, use_latest: str,
    rewrite: Callable[[ResolveResult], list[Path]] | None,
    args: argparse.Namespace, config: ClientConfig,
) -> int:  # fmt: skip
    spec = packed.spec
    shared = use_latest in ("", "any")  # other policies are the coordinator's to decide
    if not config.coordinator and not args.force and not args.no_wait and shared:
        from .readers import StoreReader

        hits = StoreReader(config.store_url).cache_hits(
            spec, platforms, no_archives=args.no_archives,
            memo_folder=config.home / "cache" / "verified",
        )  # fmt: skip
        if hits is not None:  # every platform is in the home's store: no daemon to start
            pointed = None
            if alias:
                from .alias_commands import point_alias
                from .session import open_writer

                with open_writer(config) as (_, writer):
                    pointed = point_alias(alias, hits, writer)
            _rewrite_lock(rewrite, hits)
            return _finish(hits, args, _progress(args), replay=True, pointed=pointed)
    from .session import open_client

    with _progress(args) as progress, open_client(config, progress.notice) as client:
        if packed.sources:  # the agents read local sources from the store
            from envd.store.url import open_store

            from .local_sources import upload_sources

            upload_sources(packed.sources, open_store(config.store or client.info().store_url))
        result = client.resolve(
            spec, platforms, force=args.force, no_wait=args.no_wait,
            no_archives=args.no_archives, on_event=progress, use_latest=use_latest,
        )  # fmt: skip
        pointed = None
        if alias:
            from .alias_commands import point_alias
            from .writers import CoordinatorWriter

            pointed = point_alias(alias, result, CoordinatorWriter(client))
    _rewrite_lock(rewrite, result)
    return _finish(result, args, progress, pointed=pointed)


def _rewrite_lock(
    rewrite: Callable[[ResolveResult], list[Path]] | None, result: ResolveResult
) -> None:
    """`resolve --lock` with a stale lock: write it from what resolved (stderr says where)."""
    if rewrite is None:
        return
    for path in rewrite(result):
        _stderr_line(f"wrote lock {path}")


def _alias_to_point(args: argparse.Namespace) -> str | None:
    """`resolve --alias`: the name, checked before anything resolves."""
    if not args.alias:
        return None
    from envd.aliases import parse_alias
    from envd.errors import InvalidAliasError

    if args.no_wait:
        raise InvalidAliasError(
            "`--alias` needs the resolution's result, which `--no-wait` does not wait for",
            hint="drop `--no-wait`, or point the alias later with `envd-client alias set`",
        )
    return str(parse_alias(args.alias))


def _use_latest(args: argparse.Namespace, config: ClientConfig) -> str:
    from envd.use_latest import parse_use_latest

    text, source = (args.use_latest, "--use-latest") if args.use_latest else (
        config.use_latest, config.use_latest_source)  # fmt: skip
    return str(parse_use_latest(text, source)) if text else ""


def cmd_wait(args: argparse.Namespace, config: ClientConfig) -> int:
    from .session import open_client

    with (
        _progress(args, following=True) as progress,
        open_client(config, progress.notice) as client,
    ):
        result = client.wait(args.job_ids, on_event=progress)
    return _finish(result, args, progress)


def _progress(args: argparse.Namespace, following: bool = False) -> ProgressPrinter:
    from .progress_view import ProgressPrinter

    quiet = getattr(args, "quiet", False)
    return ProgressPrinter(quiet=quiet, following=following, show_errors=args.json)


def _finish(
    result: ResolveResult, args: argparse.Namespace, progress: ProgressPrinter,
    replay: bool = False, pointed: Pointed | None = None,
) -> int:  # fmt: skip
    from envd.errors import error_to_dict

    from . import render
    from .colour import Palette

    if replay:  # answered without a stream: the progress still ends each platform
        for event in result.events.values():
            progress(event)
    alias, alias_error = pointed or (None, None)
    if args.json:
        document = render.result_json(result)
        if pointed is not None:
            document["alias"] = None if alias is None else alias.to_json()
        if alias_error is not None:
            document["alias_error"] = error_to_dict(alias_error)
        render.print_json(document)
    else:
        palette = Palette.for_stream(sys.stdout)
        quiet = getattr(args, "quiet", False)
        sys.stdout.write(render.result_text(result, progress.elapsed, palette, quiet=quiet))
        if alias is not None:
            platforms = ", ".join(sorted(alias.environments))
            print(f"alias {alias.name} → {alias.req_id} ({platforms})")
    errors = [e.error for e in result.events.values() if e.error is not None]
    if errors or result.failed:
        return errors[0].exit_code if errors else 3
    if alias_error is not None:  # said after the resolution itself, which stands
        from envd.logs import report_error

        report_error(alias_error.message, alias_error.hint, Palette.for_stream(sys.stderr).word)
        return alias_error.exit_code
    return 0


def cmd_show(args: argparse.Namespace, config: ClientConfig) -> int:
    from . import render
    from .lookup import find
    from .session import open_reader
    from .store_view import client_store, formats_present

    with open_reader(config) as reader:
        found = find(reader, args.id, args.arch)
        store = client_store(config, reader)
        present = [formats_present(row.description, store) for row in found]
    if args.json:
        render.print_json([
            {"description": row.description, "is_default": row.summary.is_default,
             "formats_in_store": p}
            for row, p in zip(found, present, strict=True)
        ])  # fmt: skip
    else:
        sys.stdout.write("\n".join(
            render.environment_text(row.description, "", row.summary.is_default, p)
            for row, p in zip(found, present, strict=True)
        ))  # fmt: skip
    return 0


def cmd_list(args: argparse.Namespace, config: ClientConfig) -> int:
    from . import render
    from .listing import Listed, list_json, list_text
    from .lookup import ID_LENGTH, check_id
    from .session import open_reader

    prefix = check_id(args.req_id, args.req_id) if args.req_id else ""
    with open_reader(config) as reader:
        listed, skipped = reader.scan_environments(prefix if len(prefix) == ID_LENGTH else "")
        rows = [Listed(s, reader.describe(s)) for s in listed if s.req_id.startswith(prefix)]
        store_url = reader.store_url
    _warn(tuple(skipped))  # what the store holds but could not be read, embedded or remote
    if args.json:
        render.print_json(list_json(rows, store_url))
    else:
        sys.stdout.write(list_text(rows, store_url))
    return 0


def cmd_create(args: argparse.Namespace, config: ClientConfig) -> int:
    import tempfile
    from pathlib import Path

    from envd.platforms import check_platform, host_platform_name

    from . import create, render, venv_create
    from .lookup import find
    from .session import open_reader
    from .store_view import client_store

    arch = check_platform(args.arch or host_platform_name())
    with open_reader(config) as reader:
        description = find(reader, args.id, [arch])[0].description
        prefix = args.prefix.resolve()
        create.check_target(description, prefix, force=args.force)
        store = client_store(config, reader)
        cache = client_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="envd-create-", dir=cache) as scratch:
            if venv_create.is_pypi_only(description):
                venv_create.check_python(description)
                wheels = venv_create.fetch_wheels(description, store, Path(scratch), _stderr_line)
                _stderr_line(f"installing {len(wheels)} wheels into a virtualenv at {prefix}")
                venv_create.install_venv(
                    wheels, prefix, Path(scratch), cache / "uv", force=args.force
                )
                filenames = [w.filename for w in wheels]
            else:  # conda, then a mixed environment's wheels (none for conda-only)
                archives = create.fetch_archives(description, store, Path(scratch), _stderr_line)
                wheels = venv_create.fetch_wheels(description, store, Path(scratch), _stderr_line)
                _stderr_line(f"installing {len(archives) + len(wheels)} packages into {prefix}")
                venv_create.install_mixed(
                    archives, wheels, prefix, description["platform"], Path(scratch), cache
                )
                filenames = [a.filename for a in archives] + [w.filename for w in wheels]
    document = {
        "prefix": str(prefix),
        "req_id": description["req_id"],
        "full_id": description["full_id"],
        "platform": description["platform"],
        "packages": filenames,
    }
    if args.json:
        render.print_json(document)
    else:
        print(
            f"created {description['req_id']}:{description['full_id']} "
            f"({description['platform']}, {len(filenames)} packages) in {prefix}"
        )
    return 0


def client_cache_dir() -> Path:
    from pathlib import Path

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "envd" / "client"


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr)


def cmd_info(args: argparse.Namespace, config: ClientConfig) -> int:
    from . import render
    from .info import gather_info, info_text

    document = gather_info(config)
    if args.json:
        render.print_json(document)
    else:
        sys.stdout.write(info_text(document))
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    from .completion import completion_script

    sys.stdout.write(completion_script(args.shell, build_parser()))
    return 0


def _say_packed(packed: PackedSpec, args: argparse.Namespace) -> None:
    """Name each git source cloned and packed here, on stderr (not with `-q`)."""
    from .local_sources import git_notes

    if not getattr(args, "quiet", False):
        for note in git_notes(packed.sources):
            print(note, file=sys.stderr)


def _warn(warnings: tuple[str, ...]) -> None:
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _elsewhere(module: str, name: str) -> Command:
    """A command implemented in `module` (`cmd_*` there), imported only when it runs."""

    def run(args: argparse.Namespace, config: ClientConfig) -> int:
        from importlib import import_module

        command: Command = getattr(import_module(f"{__package__}.{module}"), name)
        return command(args, config)

    run.__name__ = run.__qualname__ = name
    return run


cmd_alias = _elsewhere("alias_commands", "cmd_alias")
cmd_delete = _elsewhere("removal_commands", "cmd_delete")
cmd_gc = _elsewhere("removal_commands", "cmd_gc")
cmd_status = _elsewhere("lock_status", "cmd_status")
cmd_lock = _elsewhere("export_commands", "cmd_lock")
cmd_export = _elsewhere("export_commands", "cmd_export")
cmd_diff = _elsewhere("export_commands", "cmd_diff")
cmd_pre_deploy = _elsewhere("deploy_hook", "cmd_pre_deploy")

COMMANDS = {"create": cmd_create, "resolve": cmd_resolve, "spec": cmd_spec, "show": cmd_show,
            "list": cmd_list, "wait": cmd_wait, "info": cmd_info, "alias": cmd_alias,
            "delete": cmd_delete, "gc": cmd_gc, "lock": cmd_lock, "export": cmd_export,
            "diff": cmd_diff, "pre-deploy": cmd_pre_deploy, "status": cmd_status}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "completion":  # needs no settings, and must work without any
        raise SystemExit(cmd_completion(args))
    from envd.errors import EnvdError, error_to_dict
    from envd.logs import report_error

    from .colour import Palette

    _configure_logging(args.verbose)
    try:
        from .config import load_config

        config = load_config(
            coordinator_flag=args.coordinator, home_flag=args.home, tls_ca_flag=args.tls_ca
        )
        code = COMMANDS[args.command](args, config)
    except EnvdError as err:
        if args.json:
            from . import render

            render.print_json({"error": error_to_dict(err)})
        report_error(err.message, err.hint, Palette.for_stream(sys.stderr).word)
        code = err.exit_code
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


def _configure_logging(verbose: bool) -> None:
    import logging

    from envd.logs import configure_logging

    configure_logging(logging.INFO if verbose else logging.WARNING)
    if not verbose:  # the embedded daemon and agent report through events, not logs
        for name in ("envd.daemon", "envd.agent"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


__all__ = ["main"]
