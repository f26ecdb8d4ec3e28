"""The container's health probe against a real in-process coordinator, plaintext and TLS."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from envd.clock import random_id
from envd.daemon.health_probe import main as probe
from envd.daemon.server import start_daemon
from envd.daemon.settings import CoordinatorSettings
from envd.daemon.state_sqlite import SqliteJobState
from tls_ca import make_ca


def run_probe(tmp_path: Path, tls: bool) -> list[object]:
    """Exit codes of the probe against a serving daemon, then against a stopped one."""
    ca = make_ca(tmp_path / "pki")
    credentials = (
        grpc.ssl_server_credentials([(ca.key.read_bytes(), ca.cert.read_bytes())]) if tls else None
    )
    flags = ["--tls-ca", str(ca.ca), "--server-name", "localhost"] if tls else []

    def exit_code(argv: list[str]) -> object:
        try:
            probe(argv)
        except SystemExit as done:
            return done.code
        return 0

    async def main() -> list[object]:
        store = str(tmp_path / "store")
        daemon = await start_daemon(
            listen="127.0.0.1:0", store_url=store, credentials=credentials,
            state=SqliteJobState(tmp_path / "state.sqlite", random_id),
            settings=CoordinatorSettings(store_url=store),
        )  # fmt: skip
        codes = [await asyncio.to_thread(exit_code, [daemon.address, *flags])]
        await daemon.stop(grace=0)
        codes.append(
            await asyncio.to_thread(exit_code, [daemon.address, "--timeout", "0.5", *flags])
        )
        return codes

    return asyncio.run(main())


@pytest.mark.parametrize("tls", [False, True])
def test_the_probe_says_serving_then_fails_once_stopped(
    tmp_path: Path, tls: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    codes = run_probe(tmp_path, tls)
    out, err = capsys.readouterr()
    assert codes == [0, 1]
    assert out == "SERVING\n"
    assert "did not answer: UNAVAILABLE" in err
