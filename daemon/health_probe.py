"""`python -m envd.daemon.health_probe [HOST:PORT]`: exit 0 when the coordinator answers
SERVING to gRPC health checking (the container image's HEALTHCHECK; Kubernetes asks the same
service with its own `grpc` probes, in plaintext only: behind TLS, use this as an exec probe
with `--tls-ca`). Health checking needs no token."""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from envd.errors import EnvdError
from envd.tokens import channel_credentials


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
    parser.add_argument(
        "--tls-ca", metavar="PEM", help="talk TLS, trusting this CA (a daemon with --tls-cert)"
    )
    parser.add_argument(
        "--server-name",
        metavar="NAME",
        help="with --tls-ca: the name the certificate is for, when it is not the target's host",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    request = health_pb2.HealthCheckRequest(service=args.service)
    try:
        tls = channel_credentials(args.tls_ca, "--tls-ca")
    except EnvdError as err:
        print(f"error: {err.message}", file=sys.stderr)
        raise SystemExit(2) from err
    options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    if tls is None:
        opened = grpc.insecure_channel(args.target)
    else:
        opened = grpc.secure_channel(args.target, tls, options=options)
    with opened as channel:
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
