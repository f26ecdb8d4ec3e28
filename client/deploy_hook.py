"""`envd-client pre-deploy` and `envd.client.pre_deploy`: every environment of a deployment
manifest resolved (or, for an alias, confirmed) through the coordinator at once."""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envd.errors import EnvdError, IncompleteAnswerError
from envd.progress import Stage

from .deploy_result import (
    CONFIRMED,
    FAILED,
    PlatformResult,
    PreDeployResult,
    StepResult,
    description_url,
)
from .manifest import Manifest, SpecSource, Step, parse_manifest, read_manifest

if TYPE_CHECKING:
    from envd.progress import ResolveEvent
    from envd.spec import Spec
    from envd.store.base import Store

    from .api import EnvdClient
    from .config import ClientConfig
    from .local_sources import PackedSource, PackedSpec
    from .readers import EnvironmentReader

Progress = Callable[[str], None]
Packer = Callable[["Spec"], "PackedSpec"]
MAX_CONCURRENT = 16  # requests open at once; the coordinator queues the jobs behind them
# the stages a progress line is printed for: waiting for an agent, working, ended
_SHOWN = frozenset({Stage.QUEUED, Stage.RESOLVING, Stage.BUILDING, Stage.DONE, Stage.FAILED})
# a job queued again for an agent native to its platform (daemon/jobs.py native_waiting_message)
_WAITING = re.compile(r"^waiting for an? \S+ agent to build ")


@dataclass(slots=True)
class Environment:
    """One request: a spec (by req_id) or an alias, for every platform its steps need."""

    key: str  # the req_id, or the alias name
    spec: Spec | None
    alias: str | None
    platforms: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    # local directories and files of its PyPI requirements, packed (the spec names them by
    # hash, as `resolve` sends it): uploaded to the store before it is resolved
    sources: tuple[PackedSource, ...] = ()


def pre_deploy(
    manifest: str | os.PathLike[str] | Mapping[str, Any] | Manifest,
    *,
    address: str | None = None,
    config: ClientConfig | None = None,
    on_progress: Progress | None = None,
    no_archives: bool = False,
) -> PreDeployResult:
    """Resolve every spec and confirm every alias of `manifest` for its steps' platforms.

    `manifest`: a YAML file's path, the same as data (relative paths from the working folder)
    or a parsed `Manifest`. `address` (`HOST:PORT`, `unix:PATH`) picks the coordinator; else
    `config`, else the settings `envd-client` reads (ENVD_COORDINATOR, the config file, the
    embedded default). Identical environments across steps are one request; all requests run
    at once. A failed step is in the result (`ok`, `failed_steps`), not raised; an invalid
    manifest raises `InvalidManifestError`. `no_archives`: resolve and describe only, as
    `resolve --no-archives` (the deployment then needs the channels to create environments).
    """
    parsed = _manifest(manifest)
    if config is None or address is not None:
        from .config import load_config

        config = load_config(coordinator_flag=address)
    say = _locked(on_progress)
    from .local_sources import packed_sources
    from .readers import CoordinatorReader
    from .session import open_client

    with ExitStack() as packed, open_client(config, say) as client:
        scratch = config.home / "cache" / "sources-tmp"
        environments, step_errors, step_keys = group_environments(
            parsed, say, lambda spec: packed.enter_context(packed_sources(spec, scratch))
        )
        info = client.info()
        reader = CoordinatorReader(client, info.store_url)
        aliases = sum(1 for e in environments if e.alias)
        say(f"pre-deploy: {len(parsed.steps)} step(s): {len(environments) - aliases} "
            f"environment(s) to resolve, {aliases} alias(es) to confirm")  # fmt: skip
        options = {"use_latest": _use_latest(config), "no_archives": no_archives}
        store = _sources_store(environments, config.store or info.store_url)
        outcomes = run_all(environments, client, reader, options, say, store)
    result = assemble(parsed, step_errors, step_keys, outcomes, info.store_url)
    failed = len(result.failed_steps)
    say(f"pre-deploy: {len(result.steps) - failed} step(s) ready, {failed} failed")
    return result


def _manifest(manifest: str | os.PathLike[str] | Mapping[str, Any] | Manifest) -> Manifest:
    if isinstance(manifest, Manifest):
        return manifest
    if isinstance(manifest, Mapping):
        return parse_manifest(manifest, base=Path.cwd())
    return read_manifest(Path(manifest))


def group_environments(
    manifest: Manifest, say: Progress = print, pack: Packer | None = None
) -> tuple[list[Environment], dict[str, EnvdError], dict[str, str]]:
    """The distinct environments to ask for, each step's own failure (its spec would not
    load, or a local source would not pack), and each other step's environment key. `pack`
    packs a spec's local sources (`client/local_sources.py`): the req_id is then the one
    `resolve` computes for the same files; without it, a spec naming any is refused."""
    by_key: dict[str, Environment] = {}
    errors: dict[str, EnvdError] = {}
    keys: dict[str, str] = {}
    for step in manifest.steps:
        try:
            key, spec, sources = _environment_key(step, say, pack)
        except EnvdError as err:
            errors[step.name] = err
            continue
        environment = by_key.setdefault(key, Environment(key, spec, step.alias, sources=sources))
        environment.steps.append(step.name)
        environment.platforms.extend(p for p in step.platforms if p not in environment.platforms)
        keys[step.name] = key
    return list(by_key.values()), errors, keys


def _environment_key(
    step: Step, say: Progress, pack: Packer | None
) -> tuple[str, Spec | None, tuple[PackedSource, ...]]:
    if step.alias is not None:
        return step.alias, None, ()
    assert step.spec is not None
    from envd.ids import req_id

    from .local_sources import has_local_sources

    spec = load_step_spec(step.spec, warn=lambda text: say(f"warning: step `{step.name}`: {text}"))
    if not has_local_sources(spec):
        return req_id(spec), spec, ()
    if pack is None:
        from envd.errors import InvalidSpecError

        raise InvalidSpecError(
            f"step `{step.name}` names local directories, files or git requirements, and nothing "
            "packs them here",
            hint="run it through `envd-client pre-deploy` or `envd.client.pre_deploy`",
        )
    packed = pack(spec)
    return req_id(packed.spec), packed.spec, packed.sources


def load_step_spec(source: SpecSource, warn: Progress) -> Spec:
    """The spec `resolve` would send for the same files and options (and CONDA_OVERRIDE_*)."""
    from envd.spec_input import load_spec, require_channels, virtual_packages_from_environ

    overrides = virtual_packages_from_environ(os.environ) + list(source.virtual_packages)
    loaded = load_spec(
        env_files=source.files, requirement_files=source.requirements, packages=source.packages,
        pypi=source.pypi, python=source.python, channels=source.channels,
        virtual_packages=overrides, exclude_newer=source.exclude_newer,
        find_links=source.find_links,
    )  # fmt: skip
    require_channels(loaded.spec)
    for text in loaded.warnings:
        warn(text)
    return loaded.spec


def run_all(
    environments: list[Environment], client: EnvdClient, reader: EnvironmentReader,
    options: Mapping[str, Any], say: Progress, store: Store | None = None,
) -> dict[str, dict[str, PlatformResult]]:  # fmt: skip
    """Every environment at once: per key, per platform, what it gave. `store`: where an
    environment's packed local sources go first (agents read them there)."""
    if not environments:
        return {}

    def run(environment: Environment) -> dict[str, PlatformResult]:
        try:
            if environment.alias is not None:
                return confirm_alias(reader, environment.alias, environment.platforms)
            assert environment.spec is not None
            if environment.sources:
                from .local_sources import upload_sources

                assert store is not None
                upload_sources(environment.sources, store)
            return resolve_spec(client, environment, options, say)
        except EnvdError as err:  # the whole request failed: each of its platforms did
            return {p: PlatformResult(p, "", "", FAILED, "", err) for p in environment.platforms}

    with ThreadPoolExecutor(min(len(environments), MAX_CONCURRENT)) as pool:
        done = pool.map(run, environments)
        return {e.key: outcome for e, outcome in zip(environments, done, strict=True)}


def resolve_spec(
    client: EnvdClient, environment: Environment, options: Mapping[str, Any], say: Progress
) -> dict[str, PlatformResult]:
    """Resolve one spec for its platforms; the answers are judged by the client already.
    `options`: `EnvdClient.resolve`'s keywords (`use_latest`, `no_archives`)."""
    assert environment.spec is not None
    steps = ", ".join(environment.steps)
    started = time.monotonic()
    seen: set[tuple[str, str]] = set()

    def on_event(event: ResolveEvent) -> None:
        shown = str(event.outcome if event.stage.terminal and event.outcome else event.stage)
        if event.stage is Stage.QUEUED and _WAITING.match(event.message):
            shown += f": {event.message}"  # waiting for a native build: say for what
        if event.stage not in _SHOWN or (event.platform, shown) in seen:
            return
        seen.add((event.platform, shown))
        took = f" ({time.monotonic() - started:.1f} s)" if event.stage.terminal else ""
        say(f"{steps}: {event.platform} {shown}{took}")

    result = client.resolve(environment.spec, environment.platforms, on_event=on_event, **options)
    outcomes = {}
    for platform in environment.platforms:
        event = result.events[platform]  # the client ends every platform it asked for
        error = event.error
        if error is None and event.req_id != environment.key:
            error = IncompleteAnswerError(
                f"the coordinator answered `{platform}` with req_id `{event.req_id}`, not "
                f"`{environment.key}`",
                hint="the coordinator answered another request; tell its operator",
            )
        if error is not None or not event.full_id:
            error = error or IncompleteAnswerError(f"no environment for `{platform}`")
            outcomes[platform] = PlatformResult(platform, environment.key, "", FAILED, "", error)
        else:
            outcome = str(event.outcome) if event.outcome else FAILED
            outcomes[platform] = PlatformResult(platform, event.req_id, event.full_id, outcome, "")
    return outcomes


def confirm_alias(
    reader: EnvironmentReader, name: str, platforms: list[str]
) -> dict[str, PlatformResult]:
    """The environment an alias names on each platform: it must exist, and its description
    must verify (valid, sealed, and the very version the alias was set to)."""
    from envd.description import DIGEST_FIELD, validate_description
    from envd.errors import CorruptObjectError, EnvironmentNotFoundError

    alias = reader.get_alias(name)
    outcomes = {}
    for platform in platforms:
        if alias.req_id is None or platform not in alias.environments:
            named = ", ".join(f"`{p}`" for p in sorted(alias.environments)) or "nothing"
            error: EnvdError = EnvironmentNotFoundError(
                f"alias `{name}` names no environment on `{platform}`",
                hint=f"it names: {named}; resolve the spec for `{platform}` and point the "
                f"alias again (`envd-client resolve … --alias {name}`)",
            )
            outcomes[platform] = PlatformResult(platform, alias.req_id or "", "", FAILED, "", error)
            continue
        full_id, digest = alias.environments[platform]
        try:
            doc, _ = reader.describe_alias(alias, platform)
            where = f"alias `{name}` on `{platform}`"
            validate_description(doc, where)
            wanted = {"req_id": alias.req_id, "platform": platform, "full_id": full_id,
                      DIGEST_FIELD: digest or doc[DIGEST_FIELD]}  # fmt: skip
            wrong = [k for k, v in wanted.items() if doc[k] != v]
            if wrong:
                raise CorruptObjectError(
                    f"failed to verify {where}: the description's `{wrong[0]}` is "
                    f"`{doc[wrong[0]]}`, the alias says `{wanted[wrong[0]]}`",
                    hint=f"point the alias again with `envd-client alias set {name} …`",
                )
        except EnvdError as err:
            outcomes[platform] = PlatformResult(platform, alias.req_id, "", FAILED, "", err)
            continue
        outcomes[platform] = PlatformResult(platform, alias.req_id, full_id, CONFIRMED, "")
    return outcomes


def assemble(
    manifest: Manifest, step_errors: Mapping[str, EnvdError], step_keys: Mapping[str, str],
    outcomes: Mapping[str, Mapping[str, PlatformResult]], store_url: str,
) -> PreDeployResult:  # fmt: skip
    """Per step, in the manifest's order, its platforms' outcomes and description URLs."""
    steps = []
    for step in manifest.steps:
        error = step_errors.get(step.name)
        if error is not None:
            rows = tuple(PlatformResult(p, "", "", FAILED, "") for p in step.platforms)
            steps.append(StepResult(step.name, step.alias, rows, error))
            continue
        got = outcomes[step_keys[step.name]]
        rows = tuple(_located(got[p], store_url) for p in step.platforms)
        steps.append(StepResult(step.name, step.alias, rows))
    return PreDeployResult(manifest.source, manifest.name, store_url, tuple(steps))


def _located(row: PlatformResult, store_url: str) -> PlatformResult:
    """`row` with its description's URL in the store (none for a failure)."""
    if not row.full_id:
        return row
    return replace(row, store_url=description_url(store_url, row.req_id, row.platform,
                                                  row.full_id))  # fmt: skip


def _sources_store(environments: list[Environment], url: str) -> Store | None:
    """The store local sources are uploaded to (the client's `ENVD_STORE`, else the
    coordinator's), opened only when an environment has any."""
    if not any(e.sources for e in environments):
        return None
    from envd.store.url import open_store

    return open_store(url)


def _use_latest(config: ClientConfig) -> str:
    from envd.use_latest import parse_use_latest

    if not config.use_latest:
        return ""
    return str(parse_use_latest(config.use_latest, config.use_latest_source))


def _locked(on_progress: Progress | None) -> Progress:
    """Progress lines from many threads, one whole line at a time."""
    lock = threading.Lock()

    def say(text: str) -> None:
        if on_progress is not None:
            with lock:
                on_progress(text)

    return say


def cmd_pre_deploy(args: argparse.Namespace, config: ClientConfig) -> int:
    from envd.errors import ConfigError
    from envd.logs import report_error

    from . import render
    from .colour import Palette
    from .deploy_result import failure_report, result_table, write_result

    def progress(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    result = pre_deploy(args.manifest, config=config, no_archives=args.no_archives,
                        on_progress=None if args.quiet else progress)  # fmt: skip
    if args.output is not None:
        try:
            write_result(result, args.output)
        except OSError as err:
            raise ConfigError(
                f"failed to write the pre-deploy result `{args.output}`: {err.strerror or err}",
                hint="give `--output` a path in a folder you can write to",
            ) from err
    if args.json:
        render.print_json(result.to_json())
    else:
        sys.stdout.write(result_table(result))
        sys.stdout.write(("\n" + failure_report(result)) if not result.ok else "")
    if not result.ok:
        names = ", ".join(f"`{s.name}`" for s in result.failed_steps)
        report_error(
            f"{len(result.failed_steps)} step(s) cannot be deployed: {names}",
            "the report above names each step's error" if not args.json else None,
            Palette.for_stream(sys.stderr).word,
        )
    return result.exit_code
