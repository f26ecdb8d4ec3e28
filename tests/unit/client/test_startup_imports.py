"""The client imports only what a command needs: `--version` almost nothing, and a cache hit
of the embedded default neither gRPC, the daemon, the agent nor a cloud SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness import EXAMPLE_CHANNEL

HEAVY = ["grpc", "rattler", "yaml", "jsonschema", "boto3", "google", "azure", "envd.daemon",
         "envd.agents", "envd.v1", "envd.embedded", "envd.catalog"]  # fmt: skip
PROBE = """
import json, sys
from envd.client.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
names = {m for m in sys.modules}
print(json.dumps(sorted(h for h in json.loads(HEAVY) if any(
    n == h or n.startswith(h + ".") for n in names))), file=sys.stderr)
"""


def imported(tmp_path: Path, *args: str) -> list[str]:
    env = {"ENVD_HOME": str(tmp_path / "home"), "ENVD_CONFIG": "", "PATH": "/usr/bin:/bin"}
    code = PROBE.replace("json.loads(HEAVY)", repr(HEAVY))
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60
    )
    found: list[str] = json.loads(out.stderr.strip().splitlines()[-1])
    return found


def test_version_and_help_import_nothing_heavy(tmp_path: Path) -> None:
    assert imported(tmp_path, "--version") == []
    assert imported(tmp_path, "resolve", "--help") == []


def test_an_embedded_cache_hit_starts_no_daemon(tmp_path: Path) -> None:
    args = ["resolve", "-c", str(EXAMPLE_CHANNEL), "-p", "python=3.9", "--arch", "linux-64",
            "--no-archives", "-q"]  # fmt: skip
    first = imported(tmp_path, *args)
    assert "envd.embedded" in first and "grpc" in first  # resolved: the daemon ran
    # a valid description never needs jsonschema (only to explain a broken one)
    assert imported(tmp_path, *args) == ["envd.catalog", "rattler", "yaml"]
