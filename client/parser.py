"""The command line's grammar: commands, their flags, a description and an example for each.

`--coordinator`, `--home`, `-v/--verbose` and `--json` work before or after the command: each
command repeats them with suppressed defaults, so a value given after it wins and none given
leaves the one before it. Building the parser imports nothing heavy (`--version` stays fast).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import envd

DEFAULT_GRACE = 24 * 3600.0  # what `gc` keeps: anything younger than a day
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([smhd]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

EPILOG = """\
Without --coordinator (or ENVD_COORDINATOR, or `coordinator` in ~/.config/envd/config.toml),
envd-client runs the coordinator and an agent in-process, with state and store in its home:
--home, else ENVD_HOME, else $XDG_DATA_HOME/envd, else ~/.local/share/envd (`envd-client info`).
Exit codes: 0 ok, 1 internal, 2 bad input, 3 resolution failed, 4 job/agent, 5 coordinator, 6 store,
7 not allowed (a missing or unknown token, a role or namespace the token lacks).

example:
  envd-client resolve -f environment.yml --arch linux-64 --arch osx-arm64
"""
# command: (one-line help, description, example)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "resolve": (
        "resolve a spec for one or more platforms",
        "Resolve a spec into pinned environments, one per platform: answered from the store "
        "when resolved before (cache_hit), else by an agent (a new job, or one in flight).",
        "envd-client resolve -f environment.yml --arch linux-64 --arch osx-arm64",
    ),
    "status": (
        "whether a lock file still satisfies a spec",
        "Compare a lock file (conda-lock, pixi.lock or @EXPLICIT) with a spec, reading files "
        "only: `up-to-date`, `out-of-date` with the reason, or `missing`. A lock satisfies the "
        "spec when its channels are the spec's, it pins every platform, and every top-level "
        "dependency is pinned at a version its constraint accepts; comments, whitespace and "
        "order never make it stale. Exit codes: 0 up-to-date, 10 out-of-date, 11 missing "
        "(2 for a spec or lock that can't be read); --json prints `status` and `reason` "
        "whatever the code.",
        "envd-client status -f environment.yml --lock conda-lock.yml --json",
    ),
    "spec": (
        "print what envd understood, without resolving",
        "Print the normalized spec, its req_id and the conda and PyPI specs per platform.",
        "envd-client spec -c conda-forge -p 'numpy>=1.20' --python 3.11 --json",
    ),
    "show": (
        "show an environment by req_id, full_id, both, or alias",
        "Show stored environments: a req_id's default per platform, a full_id's description, "
        "`req_id:full_id`, or what an alias names. Ids may be any unique prefix of at least 8 "
        "characters.",
        "envd-client show 1f0e3dad9908",
    ),
    "list": (
        "list environments in the store",
        "List the environments in the store: one row per platform and resolution.",
        "envd-client list --json",
    ),
    "create": (
        "materialize an environment from the store's cached archives alone",
        "Create a conda environment in a new prefix from the archives cached in the store; "
        "the channel is not needed.",
        "envd-client create 1f0e3dad9908 --prefix ./env",
    ),
    "alias": (
        "set, get, list or delete aliases (`namespace/name[:tag]`)",
        "Name environments for a team: an alias points at a req_id and its full_id per "
        "platform. Tags that look like versions (`v1`, `1.2`, `2024-06-01`) are write-once; "
        "`latest` and other words move. Every move is kept in the alias's history.",
        "envd-client alias set ml_team/train_env:v1 1f0e3dad9908",
    ),
    "delete": (
        "delete an environment (by id or alias) from the store",
        "Delete environments' descriptions and default pointers (archives stay for `gc`). "
        "Refused while an alias points at one, unless --force (which takes it out of the "
        "alias, recorded in its history). A coordinator asks for an admin token.",
        "envd-client delete 1f0e3dad9908 --arch linux-64",
    ),
    "gc": (
        "remove archives no environment needs",
        "Remove archives no description references, transmute links whose `.conda` is gone and "
        "temp files interrupted writes left; nothing younger than --grace, so resolves in "
        "flight are safe. A coordinator asks for an admin token.",
        "envd-client gc --dry-run",
    ),
    "lock": (
        "write an environment as conda-lock.yml, @EXPLICIT files or pixi.lock",
        "Write lock files of an environment (by id or alias) that conda-lock, conda, mamba and "
        "pixi read: `conda-lock` (one multi-platform conda-lock.yml, conda and pip packages, "
        "req_id and alias in its custom_metadata), `explicit` (one @EXPLICIT file per "
        "platform, conda packages only; -o is a pattern with `{platform}`), `pixi` (pixi.lock).",
        "envd-client lock ml_team/train_env:v1 --format explicit -o 'conda-{platform}.lock'",
    ),
    "export": (
        "print an environment as a pinned environment.yml or requirements.txt",
        "Print (or write, with -o) the pinned environment.yml (channels, conda pins "
        "name=version=build and a pip: list) or requirements.txt (PyPI packages with "
        "--hash=sha256: lines) of an environment on one platform.",
        "envd-client export 1f0e3dad9908 --format environment.yml --platform linux-64",
    ),
    "diff": (
        "packages added, removed and changed between two environments",
        "Compare two environments (each an id or alias) per platform: packages added, "
        "removed, and changed in version, build or archive.",
        "envd-client diff ml_team/train_env:v1 ml_team/train_env:v2 --json",
    ),
    "wait": (
        "re-attach to jobs printed by `resolve --no-wait`",
        "Follow jobs until they end, as `resolve` would have.",
        "envd-client wait job-0c9a4e7f",
    ),
    "info": (
        "where this client's coordinator, store and state are",
        "Print the coordinator address or the embedded home, the store URL, the state path, "
        "the versions and the platforms agents serve. Starts and creates nothing.",
        "envd-client info --json",
    ),
    "pre-deploy": (
        "resolve or confirm every environment of a deployment manifest, at once",
        "Read a deployment manifest (YAML: steps, each with its environment — spec files, "
        "inline specs or an alias — and its platforms), resolve every spec and confirm every "
        "alias for its platforms through the coordinator at once, print a table (step, "
        "platform, req_id, full_id, outcome) and exit non-zero naming every step that can't "
        "be resolved, with its error. docs/pre-deploy.md has the manifest and result schemas.",
        "envd-client pre-deploy deploy/manifest.yaml --output envd-environments.json",
    ),
    "completion": (
        "print a shell completion script",
        "Print a completion script for bash, zsh or fish.",
        'eval "$(envd-client completion bash)"   # or: envd-client completion fish | source',
    ),
}
SHELLS = ("bash", "zsh", "fish")


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    unset: Any = argparse.SUPPRESS if suppress else None
    off: Any = argparse.SUPPRESS if suppress else False
    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument("--coordinator", metavar="ADDRESS", default=unset,
                       help="HOST:PORT or unix:PATH of envd-daemon")  # fmt: skip
    group.add_argument("--home", metavar="DIR", default=unset,
                       help="the embedded default's home (e.g. `.envd`)")  # fmt: skip
    group.add_argument("-v", "--verbose", action="store_true", default=off, help="log to stderr")
    group.add_argument("--json", action="store_true", default=off,
                       help="print exactly one JSON document")  # fmt: skip
    group.add_argument("--tls-ca", metavar="PEM", default=unset,
                       help="talk TLS to the coordinator, trusting this CA (ENVD_TLS_CA)")  # fmt: skip


def _spec_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("spec")
    add = group.add_argument
    add("-f", "--file", action="append", default=[], type=Path, dest="files",
        help="environment.yml (repeatable)")  # fmt: skip
    add("-r", "--requirements", action="append", default=[], type=Path,
        help="requirements.txt (repeatable)")  # fmt: skip
    add("-p", "--package", action="append", default=[], dest="packages", metavar="SPEC",
        help="conda MatchSpec, e.g. 'numpy>=1.20' (repeatable)")  # fmt: skip
    add("--pypi", action="append", default=[], metavar="SPEC",
        help="PyPI requirement (repeatable)")  # fmt: skip
    add("--find-links", action="append", default=[], metavar="URL",
        help="an http(s) page of links to wheels and sdists that uv searches besides the "
        "indexes, as pip's `-f` (repeatable)")  # fmt: skip
    add("--python", help="python version or constraint, e.g. 3.11")
    add("-c", "--channel", action="append", default=[], dest="channels",
        help="channel name, URL or folder, in priority order (repeatable)")  # fmt: skip
    add("--virtual-package", action="append", default=[], metavar="NAME=VERSION",
        help="override a virtual package, e.g. __glibc=2.28 (repeatable; "
        "CONDA_OVERRIDE_GLIBC/OSX/CUDA are read too)")  # fmt: skip
    add("--exclude-newer", metavar="TIMESTAMP", default=None,
        help="only packages uploaded before this moment: RFC 3339 or a date, e.g. 2024-06-01 "
        "(PyPI)")  # fmt: skip
    add("--arch", "--platform", action="append", default=[], metavar="PLATFORM", dest="arch",
        help="target platform (repeatable; default: the files' `platforms:`, else this "
        "machine's, as `envd-client info` shows)")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="envd-client",
        description="Resolve pinned, cached environments for every platform you deploy to.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"envd-client {envd.__version__}")
    _global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub: dict[str, argparse.ArgumentParser] = {}
    for name, (summary, description, example) in COMMANDS.items():
        sub[name] = commands.add_parser(
            name,
            help=summary,
            description=description,
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _global_options(sub[name], suppress=True)
    _resolve_options(sub["resolve"])
    _spec_options(sub["spec"])
    _spec_options(sub["status"])
    sub["status"].add_argument("--lock", type=Path, required=True, metavar="PATH",
                               help="the lock file (conda-lock.yml, pixi.lock, @EXPLICIT)")  # fmt: skip
    sub["show"].add_argument("id", metavar="ID", help="req_id, full_id, req_id:full_id, or alias")
    sub["show"].add_argument("--arch", action="append", default=[], metavar="PLATFORM",
                             help="platform(s) of a req_id (default: every platform resolved)")  # fmt: skip
    create = sub["create"]
    create.add_argument("id", metavar="ID",
                        help="req_id (with --arch), full_id, req_id:full_id, or alias")  # fmt: skip
    create.add_argument("--arch", default=None, metavar="PLATFORM",
                        help="platform of a req_id; must be this machine's (the default)")  # fmt: skip
    create.add_argument("--prefix", required=True, type=Path, help="directory to create it in")
    create.add_argument("--force", action="store_true", help="install into a non-empty prefix")
    sub["list"].add_argument("req_id", nargs="?", default="",
                             help="only this req_id (or a prefix of 8 or more characters)")  # fmt: skip
    sub["wait"].add_argument("job_ids", nargs="+", metavar="JOB")
    _alias_commands(sub["alias"])
    delete = sub["delete"]
    delete.add_argument("id", metavar="ID", help="req_id, full_id, req_id:full_id, or alias")
    delete.add_argument("--arch", action="append", default=[], metavar="PLATFORM",
                        help="only these platforms (default: every one the id names)")  # fmt: skip
    delete.add_argument("--force", action="store_true",
                        help="delete even if aliases point at it (they stop naming it)")  # fmt: skip
    gc = sub["gc"]
    gc.add_argument("--dry-run", action="store_true", help="list what would go; remove nothing")
    gc.add_argument("--grace", type=duration, default=DEFAULT_GRACE, metavar="DURATION",
                    help="keep anything younger (`90s`, `30m`, `6h`, `2d`; default 1d)")  # fmt: skip
    _export_options(sub["lock"], sub["export"], sub["diff"])
    sub["completion"].add_argument("shell", choices=SHELLS, help="the shell to complete in")
    _pre_deploy_options(sub["pre-deploy"])
    return parser


def duration(text: str) -> float:
    """`90`, `90s`, `30m`, `6h`, `2d` → seconds (an argparse type)."""
    found = _DURATION.match(text.strip())
    if found is None:
        raise argparse.ArgumentTypeError(f"`{text}` is not a duration such as `90s`, `6h`, `2d`")
    return float(found.group(1)) * _UNIT[found.group(2)]


def _alias_commands(alias: argparse.ArgumentParser) -> None:
    actions = alias.add_subparsers(dest="alias_command", required=True, metavar="ACTION")
    name_help = "`namespace/name[:tag]` (the tag defaults to `latest`)"
    setting = actions.add_parser("set", help="point an alias at an environment (id or alias)")
    setting.add_argument("name", metavar="NAME", help=name_help)
    setting.add_argument("target", metavar="ID|ALIAS",
                         help="req_id, full_id, req_id:full_id, or another alias")  # fmt: skip
    setting.add_argument("--arch", action="append", default=[], metavar="PLATFORM",
                         help="only these platforms (default: every one it names)")  # fmt: skip
    actions.add_parser("get", help="what an alias points at, and its history").add_argument(
        "name", metavar="NAME", help=name_help
    )
    actions.add_parser("list", help="aliases, optionally by prefix").add_argument(
        "prefix", nargs="?", default="", metavar="PREFIX", help="e.g. `ml_team/`"
    )
    actions.add_parser("delete", help="delete an alias (its history is kept)").add_argument(
        "name", metavar="NAME", help=name_help
    )
    for action in actions.choices.values():
        _global_options(action, suppress=True)


def _export_options(
    lock: argparse.ArgumentParser, export: argparse.ArgumentParser, diff: argparse.ArgumentParser
) -> None:
    id_help = "req_id, full_id, req_id:full_id, or alias"
    lock.add_argument("id", metavar="ID|ALIAS", help=id_help)
    lock.add_argument("--format", required=True, choices=("conda-lock", "explicit", "pixi"))
    lock.add_argument("-o", "--output", metavar="PATH",
                      help="where to write (default: conda-lock.yml, conda-{platform}.lock, "
                      "pixi.lock); `{platform}` in it names each platform's file")  # fmt: skip
    lock.add_argument("--arch", action="append", default=[], metavar="PLATFORM",
                      help="only these platforms (default: every one the id names)")  # fmt: skip
    export.add_argument("id", metavar="ID|ALIAS", help=id_help)
    export.add_argument("--format", required=True,
                        choices=("environment.yml", "requirements.txt"))  # fmt: skip
    export.add_argument("--platform", metavar="PLATFORM",
                        help="the platform to export; required when the environment's "
                        "platforms pin different packages")  # fmt: skip
    export.add_argument("-o", "--output", metavar="PATH", help="write here, not to stdout")
    diff.add_argument("old", metavar="A", help="ID|ALIAS: " + id_help)
    diff.add_argument("new", metavar="B", help="ID|ALIAS, compared with A")
    diff.add_argument("--arch", action="append", default=[], metavar="PLATFORM",
                      help="only these platforms (default: every one either names)")  # fmt: skip


def _resolve_options(resolve: argparse.ArgumentParser) -> None:
    _spec_options(resolve)
    resolve.add_argument("--from-lock", type=Path, metavar="FILE",
                         help="register a lock file's environments without solving: "
                         "conda-lock.yml, pixi.lock (its `default` environment, or --lock-environment) or an @EXPLICIT "
                         "file (its platform from `# platform:` or --platform); --platform picks "
                         "platforms of the lock; no spec options with it")  # fmt: skip
    resolve.add_argument("--lock-environment", metavar="NAME",
                         help="with --from-lock of a pixi.lock: import this environment of it "
                         "instead of `default`")  # fmt: skip
    resolve.add_argument("--lock", type=Path, metavar="PATH",
                         help="keep this lock current: an up-to-date lock is registered without "
                         "solving; a stale or missing one is re-solved and rewritten (format "
                         "kept, else from the name: pixi.lock, `{platform}` for @EXPLICIT, "
                         "else conda-lock)")  # fmt: skip
    for flag, text in (
        ("--locked", "fail on a stale or missing lock instead of updating it"),
        ("--frozen", "use the lock as it is, without checking it"),
        ("--no-lock", "re-solve and rewrite it even if up to date"),
    ):
        resolve.add_argument(flag, action="store_true", help=f"with --lock: {text}")
    resolve.add_argument("--force", action="store_true", help="resolve again despite a default")
    resolve.add_argument("--no-wait", action="store_true",
                         help="return once accepted; prints job ids for `envd-client wait`")  # fmt: skip
    resolve.add_argument("--no-archives", action="store_true",
                         help="resolve and describe only; do not cache package archives")  # fmt: skip
    resolve.add_argument("--alias", metavar="NAME",
                         help="then point this alias (`namespace/name[:tag]`) at the result")  # fmt: skip
    resolve.add_argument("--use-latest", metavar="any|mine|none|USER[,USER…]",
                         help="which resolved environments may answer: the shared default "
                         "(any), the newest you (mine) or these users resolved, or none "
                         "(default: ENVD_USE_LATEST, else any)")  # fmt: skip
    resolve.add_argument("-q", "--quiet", action="store_true",
                         help="no progress and no package tables: the summary line per platform")  # fmt: skip


def _pre_deploy_options(pre_deploy: argparse.ArgumentParser) -> None:
    pre_deploy.add_argument("manifest", metavar="MANIFEST", type=Path,
                            help="the deployment manifest (YAML); its paths are relative to it")  # fmt: skip
    pre_deploy.add_argument("-o", "--output", type=Path, metavar="PATH",
                            help="write the JSON result (step → platform → full_id, store_url) "
                            "here, whether or not every step resolved")  # fmt: skip
    pre_deploy.add_argument("--no-archives", action="store_true",
                            help="resolve and describe only; do not cache package archives")  # fmt: skip
    pre_deploy.add_argument("-q", "--quiet", action="store_true",
                            help="no progress lines on stderr")  # fmt: skip
