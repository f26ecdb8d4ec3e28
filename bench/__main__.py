"""`python -m bench`: read options, run the suite, print a table or one JSON document."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from bench.channel import CHANNEL_MODES
from bench.report import render, to_document
from bench.suite import BenchOptions, run_bench, stderr_progress
from envd.platforms import check_platform


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"`{text}` is not a positive integer")
    return value


def parse_options(argv: Sequence[str] | None = None) -> tuple[BenchOptions, bool]:
    defaults = BenchOptions()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="envd's cache-hit and resolve latency next to the raw store and py-rattler.",
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
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)  # fmt: skip
    options = BenchOptions(
        requests=args.requests,
        concurrency=args.concurrency,
        repeats=args.repeats,
        platform=args.platform,
        channel=args.channel,
    )
    return options, args.json


def main(argv: Sequence[str] | None = None) -> int:
    options, as_json = parse_options(argv)
    document = to_document(run_bench(options, stderr_progress))
    print(json.dumps(document, indent=2) if as_json else render(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
