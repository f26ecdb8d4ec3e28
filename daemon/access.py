"""How the daemon's port is guarded, from its flags: token auth (`--tokens`) and TLS
(`--tls-cert`, `--tls-key`); and `envd-daemon hash-token`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from envd.errors import ConfigError
from envd.tokens import hash_token

from .auth import AuthInterceptor, Tokens

log = logging.getLogger("envd.daemon")


@dataclass(frozen=True, slots=True)
class Access:
    tokens: Tokens | None
    interceptors: tuple[grpc.aio.ServerInterceptor, ...]
    credentials: grpc.ServerCredentials | None


def add_access_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tokens",
        type=Path,
        metavar="PATH",
        help="TOML file of `[[tokens]]` (identity, role, namespaces, sha256) that may call; "
        "re-read on SIGHUP; `envd-daemon hash-token` prints a token's sha256. Without it "
        "anyone who can connect may do anything",
    )
    parser.add_argument(
        "--tls-cert", type=Path, metavar="PEM", help="serve TLS with this certificate"
    )
    parser.add_argument("--tls-key", type=Path, metavar="PEM", help="the certificate's private key")


def open_access(args: argparse.Namespace) -> Access:
    """Tokens and TLS as the flags ask; without `--tokens`, auth is off, with a warning."""
    credentials = None
    if args.tls_cert:
        try:
            pair = (args.tls_key.read_bytes(), args.tls_cert.read_bytes())
        except OSError as err:
            raise ConfigError(
                f"failed to read TLS file `{err.filename}`: {err.strerror or err}",
                hint="--tls-cert and --tls-key are PEM files",
            ) from err
        credentials = grpc.ssl_server_credentials([pair])
    if args.tokens is None:
        log.warning(
            "auth is off (no --tokens): anyone who can reach this port may resolve, move and "
            "delete aliases, delete environments and register as an agent"
        )
        return Access(None, (), credentials)
    tokens = Tokens(args.tokens)
    log.info("auth on: %d token(s) from `%s` (SIGHUP re-reads it)", len(tokens), args.tokens)
    return Access(tokens, (AuthInterceptor(tokens),), credentials)


def hash_token_command(argv: Sequence[str]) -> int:
    """`envd-daemon hash-token`: the sha256 a `--tokens` file lists for the token on stdin."""
    if argv:
        print("usage: envd-daemon hash-token < token-file", file=sys.stderr)
        return 2
    token = sys.stdin.read()
    token = token.removesuffix("\n").removesuffix("\r")
    if not token:
        print("error: no token on stdin", file=sys.stderr)
        return 2
    print(hash_token(token))
    return 0
