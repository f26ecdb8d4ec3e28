"""`python -m bench`: read options, run the suite, print a table or one JSON document."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence

from bench.channel import CHANNEL_MODES
from bench.emulators import BACKENDS, Backend
from bench.report import render, to_document
from bench.suite import BenchOptions, run_bench, stderr_progress
from envd.agents.transmute import MAX_LEVEL, MIN_LEVEL
from envd.platforms import check_platform

_SIZE = re.compile(r"(\d+)\s*([kmg]?)(?:i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"`{text}` is not a positive integer")
    return value


def _size(text: str) -> int:
    """`65536`, `64KiB`, `2MiB`, `1G`: binary units, case-insensitive."""
    found = _SIZE.fullmatch(text.strip())
    if found is None:
        raise argparse.ArgumentTypeError(f"`{text}` is not a size like `65536`, `64KiB`, `2MiB`")
    return int(found[1]) * _UNITS[found[2].lower()]


def _backends(text: str) -> tuple[Backend, ...]:
    chosen = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in chosen if name not in BACKENDS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"`{unknown[0]}` is not a backend; pick from `{','.join(BACKENDS)}`"
        )
    return tuple(b for b in BACKENDS if b in chosen)


def _level(text: str) -> int:
    value = int(text)
    if not MIN_LEVEL <= value <= MAX_LEVEL:
        raise argparse.ArgumentTypeError(f"`{text}` is outside {MIN_LEVEL}..{MAX_LEVEL}")
    return value


def parse_options(argv: Sequence[str] | None = None) -> tuple[BenchOptions, bool]:
    defaults = BenchOptions()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="envd's cache-hit and resolve latency next to the raw store and py-rattler; "
        "archive uploads, transmutes and re-resolve bytes next to the raw SDKs and library.",
    )
    parser.add_argument(
        "--requests",
        type=_positive,
        default=defaults.requests,
        help="cache-hit requests per measurement (default %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive,
        default=defaults.concurrency,
        help="client threads for throughput (default %(default)s)",
    )
    parser.add_argument(
        "--repeats",
        type=_positive,
        default=defaults.repeats,
        help="samples per cold/warm resolve; the median is reported (default %(default)s)",
    )
    parser.add_argument(
        "--platform",
        type=check_platform,
        default=defaults.platform,
        help="target platform (default %(default)s)",
    )
    parser.add_argument(
        "--channel",
        choices=CHANNEL_MODES,
        default=defaults.channel,
        help="serve the example channel over loopback HTTP or read the folder "
        "(default %(default)s)",
    )
    _archive_arguments(parser, defaults)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)  # fmt: skip
    options = BenchOptions(
        requests=args.requests,
        concurrency=args.concurrency,
        repeats=args.repeats,
        platform=args.platform,
        channel=args.channel,
        skip_archives=args.skip_archives,
        backends=args.backends,
        upload_files=args.upload_files,
        upload_size=args.upload_size,
        upload_large_size=args.upload_large_size,
        upload_rounds=args.upload_rounds,
        archives=args.archives,
        archive_size=args.archive_size,
        transmute_level=args.transmute_level,
        transmute_workers=args.transmute_workers,
        transmute_rounds=args.transmute_rounds,
    )
    return options, args.json


def _archive_arguments(parser: argparse.ArgumentParser, defaults: BenchOptions) -> None:
    group = parser.add_argument_group("archive sections (4-6)")
    group.add_argument("--skip-archives", action="store_true",
                       help="skip sections 4-6 (emulators, transmutes, re-resolve)")  # fmt: skip
    mib = f"{defaults.upload_size >> 20}MiB"
    options: list[tuple[str, Callable[[str], object], object, str]] = [
        ("--backends", _backends, defaults.backends,
         f"comma-separated stores to upload to (default {','.join(defaults.backends)})"),
        ("--upload-files", _positive, defaults.upload_files, "files of --upload-size"),
        ("--upload-size", _size, defaults.upload_size, f"bytes per file (default {mib})"),
        ("--upload-large-size", _size, defaults.upload_large_size,
         f"one more, larger file; 0: none (default {defaults.upload_large_size >> 20}MiB)"),
        ("--upload-rounds", _positive, defaults.upload_rounds, "times each file goes up"),
        ("--archives", _positive, defaults.archives, "synthetic .tar.bz2 packages to transmute"),
        ("--archive-size", _size, defaults.archive_size,
         f"payload per package (default {defaults.archive_size >> 20}MiB)"),
        ("--transmute-level", _level, defaults.transmute_level, "zstd level for both sides"),
        ("--transmute-workers", _positive, defaults.transmute_workers,
         "envd Transmuter worker processes (default: one per CPU)"),
        ("--transmute-rounds", _positive, defaults.transmute_rounds,
         "transmute rounds; the median is reported"),
    ]  # fmt: skip
    for flag, kind, default, what in options:
        shown = what if "(default" in what else f"{what} (default %(default)s)"
        group.add_argument(flag, type=kind, default=default, help=shown)


def main(argv: Sequence[str] | None = None) -> int:
    options, as_json = parse_options(argv)
    document = to_document(run_bench(options, stderr_progress))
    print(json.dumps(document, indent=2) if as_json else render(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
