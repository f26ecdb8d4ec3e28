"""`python -m envd.daemon.health_probe [HOST:PORT]`: exit 0 when the coordinator answers
SERVING to gRPC health checking (the container image's HEALTHCHECK; Kubernetes asks the same
service with its own `grpc` probes)."""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m envd.daemon.health_probe",
        description="Ask an envd-daemon whether it is serving (gRPC health checking).",
    )
    parser.add_argument(
        "target", nargs="?", default="127.0.0.1:50051", help="HOST:PORT (default %(default)s)"
    )
    parser.add_argument(
        "--service", default="", help="service name to ask about (default: the whole server)"
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    request = health_pb2.HealthCheckRequest(service=args.service)
    with grpc.insecure_channel(args.target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(request, timeout=args.timeout)
        except grpc.RpcError as err:
            print(f"error: `{args.target}` did not answer: {err.code().name}", file=sys.stderr)
            raise SystemExit(1) from err
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(status)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
