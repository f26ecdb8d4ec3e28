"""The token file, lookups by digest, reload, and which role may call which service."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from envd.daemon.auth import AuthInterceptor, Principal, Role, Tokens, require_namespace
from envd.daemon.auth import _principal as principal_var
from envd.errors import ConfigError, PermissionDeniedError, UnauthenticatedError
from envd.tokens import bearer_token, hash_token


def token_file(ada: str = "ada-secret") -> str:
    return f"""
[[tokens]]
identity = "ada"
role = "client"
namespaces = ["ml_team"]
sha256 = "{hash_token(ada)}"

[[tokens]]
identity = "builder-1"
role = "agent"
sha256 = "{hash_token("agent-secret")}"

[[tokens]]
identity = "ops"
role = "admin"
sha256 = "{hash_token("ops-secret")}"
"""


RESOLVE = "/envd.v1.Environments/Resolve"
CONNECT = "/envd.v1.Agents/Connect"


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    path = tmp_path / "tokens.toml"
    path.write_text(token_file())
    return Tokens(path)


def test_hash_token_reads_stdin_without_its_newline() -> None:
    for text in ("ada-secret\n", "ada-secret"):
        out = subprocess.run(
            [sys.executable, "-m", "envd.daemon.main", "hash-token"],
            input=text, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert out.stdout == hashlib.sha256(b"ada-secret").hexdigest() + "\n"


def test_tokens_are_found_by_digest_and_only_when_known(tokens: Tokens) -> None:
    assert tokens.lookup("ada-secret") == Principal("ada", Role.CLIENT, ("ml_team",))
    assert tokens.lookup("ops-secret") == Principal("ops", Role.ADMIN)
    assert tokens.lookup("ada-secret ") is None and tokens.lookup("") is None
    assert bearer_token([("authorization", "Bearer ada-secret")]) == "ada-secret"
    assert bearer_token([("authorization", "Basic xyz")]) is None


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('[[tokens]]\nidentity = "a"\nrole = "root"\nsha256 = "' + "0" * 64 + '"',
         "entry 1 has role `root`: use `client`, `agent` or `admin`"),
        ('[[tokens]]\nidentity = "a"\nrole = "client"\nsha256 = "secret"',
         "entry 1 has no `sha256` (64 lowercase hex characters)"),
        ('[[tokens]]\nidentity = "a"\nrole = "client"\ntoken = "x"\nsha256 = "' + "0" * 64 + '"',
         "entry 1 has unknown key `token`"),
        ('[[tokens]]\nrole = "client"\nsha256 = "' + "0" * 64 + '"', "entry 1 has no `identity`"),
        ('[[tokens]]\nidentity = "a"\nrole = "client"\nnamespaces = "ml"\nsha256 = "' + "0" * 64
         + '"', "entry 1 has `namespaces` that is not a list of strings"),
        ('tokens = 3', "it holds only `[[tokens]]` tables"),
    ],
)  # fmt: skip
def test_a_bad_token_file_is_refused_naming_the_entry(
    tmp_path: Path, body: str, words: str
) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        Tokens(path)
    assert info.value.message.startswith(f"failed to read tokens file `{path}`")
    assert words in info.value.message


def test_reload_swaps_the_table_and_keeps_it_when_the_file_is_broken(
    tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    tokens.path.write_text(token_file("ada-rotated"))
    assert tokens.reload()
    assert tokens.lookup("ada-secret") is None and tokens.lookup("ada-rotated") is not None
    tokens.path.write_text("[[tokens]\n")
    with caplog.at_level(logging.ERROR, "envd.daemon"):
        assert not tokens.reload()
    assert tokens.lookup("ada-rotated") is not None
    assert "keeping the 3 token(s) loaded before" in caplog.text


def test_roles_decide_which_service_a_token_may_call(tokens: Tokens) -> None:
    check = AuthInterceptor(tokens).check
    assert check(RESOLVE, "ada-secret").identity == "ada"
    assert check(RESOLVE, "ops-secret").identity == "ops"
    assert check(CONNECT, "agent-secret").identity == "builder-1"
    with pytest.raises(UnauthenticatedError) as missing:
        check(RESOLVE, None)
    assert missing.value.message == (
        "`/envd.v1.Environments/Resolve` needs a token: the call carried no "
        "`authorization: Bearer` metadata"
    )
    with pytest.raises(UnauthenticatedError, match="the token is not one the coordinator knows"):
        check(RESOLVE, "guess")
    with pytest.raises(PermissionDeniedError) as agent_on_client:
        check(RESOLVE, "agent-secret")
    assert agent_on_client.value.message == (
        "`builder-1` (role `agent`) may not call `/envd.v1.Environments/Resolve`: it needs role "
        "`client` or `admin`"
    )
    for token in ("ada-secret", "ops-secret"):
        with pytest.raises(PermissionDeniedError, match="it needs role `agent`"):
            check(CONNECT, token)


def test_namespaces_decide_alias_writes_and_admins_may_delete() -> None:
    async def as_caller(principal: Principal | None, namespace: str, deleting: bool) -> None:
        principal_var.set(principal)
        require_namespace(namespace, deleting=deleting)

    def run(principal: Principal | None, namespace: str, deleting: bool = False) -> None:
        asyncio.run(as_caller(principal, namespace, deleting))

    ada = Principal("ada", Role.CLIENT, ("ml_team",))
    run(None, "anything")  # auth off
    run(ada, "ml_team")
    run(ada, "ml_team", deleting=True)
    with pytest.raises(PermissionDeniedError) as info:
        run(ada, "vision")
    assert info.value.message == (
        "`ada` may not write namespace `vision`: its token's namespaces are `ml_team`"
    )
    run(Principal("ops", Role.ADMIN), "vision", deleting=True)
    with pytest.raises(PermissionDeniedError, match="`ops` may not write namespace `vision`"):
        run(Principal("ops", Role.ADMIN), "vision")
    run(Principal("ci", Role.CLIENT, ("*",)), "vision")
