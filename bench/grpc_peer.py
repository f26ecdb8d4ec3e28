"""Cache-hit `Resolve` through a real `envd-daemon` next to a minimal `grpc.aio` server that
streams back the very same response bytes: the practical limit of Python gRPC on this machine.

`python -m bench.grpc_peer [--streams 16] [--seconds 5] [--json]`. Both servers run as their
own process; one load generator (this process, grpc.aio) drives each in turn, so the client's
cost is the same on both sides and the ratio is the server's."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc

import envd
from bench.channel import open_channel
from bench.stats import percentile, ratio
from envd.client.api import EnvdClient
from envd.embedded import EmbeddedCoordinator
from envd.progress import Outcome
from envd.spec import RawDependency, RawSpec, normalize_spec
from envd.v1 import common_pb2, environments_pb2
from envd.wire import PROTOCOL_METADATA_KEY, VERSION_METADATA_KEY, spec_to_pb

METHOD = "/envd.v1.Environments/Resolve"
BIN = Path(sys.executable).parent


def _identity(data: bytes) -> bytes:
    return data


@dataclass(frozen=True, slots=True)
class ServerFigures:
    requests_per_s: float
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True, slots=True)
class PeerComparison:
    streams: int
    seconds: float
    packages: int
    response_bytes: int
    envd: ServerFigures
    peer: ServerFigures
    throughput_ratio: float  # envd / peer, 16 streams: higher is better (goal >= 0.5)
    p50_ratio: float  # envd / peer, one stream: lower is better (goal <= 2)


async def _load(
    target: str, request: bytes, streams: int, seconds: float, metadata: Sequence[tuple[str, str]]
) -> tuple[float, list[float]]:
    """`streams` concurrent callers repeat the call for `seconds`; (requests/s, latencies)."""
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_stream(
            METHOD, request_serializer=_identity, response_deserializer=_identity
        )
        for _ in range(20):  # connect and warm up
            [m async for m in call(request, metadata=metadata)]
        samples: list[float] = []
        stop_at = time.perf_counter() + seconds

        async def caller() -> None:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                replies = [m async for m in call(request, metadata=metadata)]
                if not replies:
                    raise RuntimeError("failed to benchmark: an empty response stream")
                samples.append(time.perf_counter() - started)

        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(streams)))
        return len(samples) / (time.perf_counter() - start), samples


def _figures(target: str, request: bytes, streams: int, seconds: float) -> ServerFigures:
    metadata = (
        (PROTOCOL_METADATA_KEY, str(envd.PROTOCOL_VERSION)),
        (VERSION_METADATA_KEY, envd.__version__),
    )
    rate, _ = asyncio.run(_load(target, request, streams, seconds, metadata))
    _, one = asyncio.run(_load(target, request, 1, seconds / 2, metadata))
    return ServerFigures(rate, percentile(one, 50) * 1000, percentile(one, 99) * 1000)


def _start(argv: list[str], ready: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"failed to start `{argv[0]}`: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    return process, ready.read_text().strip()


def cache_hit_request(channel_url: str, home: Path) -> tuple[bytes, int]:
    """Resolve python 3.9 once into `home`'s store (the embedded default); the encoded
    Resolve request that is a cache hit from then on, and the environment's package count."""
    spec = normalize_spec(RawSpec(conda=[RawDependency("python=3.9")], channels=[channel_url]))
    with EmbeddedCoordinator(home) as target, EnvdClient(target) as client:
        result = client.resolve(spec, ["linux-64"], no_archives=True)
    event = result.events["linux-64"]
    if event.outcome is not Outcome.RESOLVED or event.description is None:
        raise RuntimeError(f"failed to prepare the bench environment: {event}")
    request = environments_pb2.ResolveRequest(
        spec=spec_to_pb(spec), platforms=["linux-64"], no_archives=True,
        requester=common_pb2.Requester(user="bench", host="bench"),
    ).SerializeToString()  # fmt: skip
    return request, len(event.description["packages"])


def start_daemon(scratch: Path, name: str, *flags: str) -> tuple[subprocess.Popen[bytes], str]:
    """An `envd-daemon` over `scratch/home/store`, its state and logs named `name`."""
    ready = scratch / f"{name}.ready"
    return _start(
        [str(BIN / "envd-daemon"), "--listen", "127.0.0.1:0", "--log-level", "WARNING",
         "--store", str(scratch / "home" / "store"), "--state", str(scratch / f"{name}.sqlite"),
         "--ready-file", str(ready), *flags],
        ready, scratch / f"{name}.log",
    )  # fmt: skip


def compare(streams: int, seconds: float) -> PeerComparison:
    with open_channel("http") as source, tempfile.TemporaryDirectory(prefix="envd-peer-") as tmp:
        scratch = Path(tmp)
        request, packages = cache_hit_request(source.url, scratch / "home")
        daemon, daemon_target = start_daemon(scratch, "daemon")
        try:
            replies = _capture(daemon_target, request)
            responses = scratch / "responses.bin"
            responses.write_bytes(b"".join(len(r).to_bytes(4, "big") + r for r in replies))
            peer, peer_target = _start(
                [sys.executable, "-m", "bench.grpc_peer", "serve", str(responses),
                 str(scratch / "peer.ready")],
                scratch / "peer.ready", scratch / "peer.log",
            )  # fmt: skip
            try:
                envd_figures = _figures(daemon_target, request, streams, seconds)
                peer_figures = _figures(peer_target, request, streams, seconds)
            finally:
                peer.terminate()
                peer.wait(10)
        finally:
            daemon.terminate()
            daemon.wait(10)
    return PeerComparison(
        streams=streams, seconds=seconds, packages=packages,
        response_bytes=sum(len(r) for r in replies), envd=envd_figures, peer=peer_figures,
        throughput_ratio=ratio(envd_figures.requests_per_s, peer_figures.requests_per_s),
        p50_ratio=ratio(envd_figures.p50_ms, peer_figures.p50_ms),
    )  # fmt: skip


def _capture(target: str, request: bytes) -> list[bytes]:
    async def run() -> list[bytes]:
        async with grpc.aio.insecure_channel(target) as channel:
            call = channel.unary_stream(
                METHOD, request_serializer=_identity, response_deserializer=_identity
            )
            return [m async for m in call(request)]

    replies = asyncio.run(run())
    event = environments_pb2.ResolveEvent.FromString(replies[-1])
    if event.outcome != environments_pb2.OUTCOME_CACHE_HIT:
        raise RuntimeError("failed to benchmark: the daemon's answer is not a cache hit")
    return replies


def serve(responses_file: Path, ready: Path) -> None:
    """The peer: streams back the captured bytes for every Resolve, nothing else."""
    data = responses_file.read_bytes()
    replies: list[bytes] = []
    while data:
        size = int.from_bytes(data[:4], "big")
        replies.append(data[4 : 4 + size])
        data = data[4 + size :]

    async def resolve(request: bytes, context: grpc.aio.ServicerContext) -> object:
        for reply in replies:
            yield reply

    async def main() -> None:
        handler = grpc.method_handlers_generic_handler(
            "envd.v1.Environments",
            {"Resolve": grpc.unary_stream_rpc_method_handler(
                resolve, request_deserializer=_identity, response_serializer=_identity
            )},
        )  # fmt: skip
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        ready.write_text(f"127.0.0.1:{port}")
        await server.wait_for_termination()

    asyncio.run(main())


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        serve(Path(args[1]), Path(args[2]))
        return
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_peer", description=__doc__)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args(args)
    result = compare(options.streams, options.seconds)
    if options.json:
        print(json.dumps(asdict(result), indent=2))
        return
    print(f"cache-hit Resolve, {result.packages} packages ({result.response_bytes} bytes), "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    for name, figures in (("envd-daemon", result.envd), ("grpc.aio peer", result.peer)):
        print(f"  {name:14} {figures.requests_per_s:8.0f} req/s ({result.streams} streams)  "
              f"p50 {figures.p50_ms:6.2f} ms  p99 {figures.p99_ms:6.2f} ms (1 stream)")  # fmt: skip
    print(f"  throughput ratio {result.throughput_ratio:.2f} (goal >= 0.5), "
          f"p50 ratio {result.p50_ratio:.2f} (goal <= 2)")  # fmt: skip


if __name__ == "__main__":
    main()
