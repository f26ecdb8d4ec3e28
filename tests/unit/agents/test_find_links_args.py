"""`--find-links` as the agents give it to uv, and a failing links page named as such."""

from __future__ import annotations

from envd.agents.pypi_resolver import _explain
from envd.agents.pypi_target import pypi_target
from envd.errors import ChannelError
from envd.uv import find_links_args

LINKS = "http://127.0.0.1:9/links/"
INDEX = "https://pypi.example/simple"


def test_every_find_links_page_becomes_one_uv_option_in_order() -> None:
    assert find_links_args(()) == []
    assert find_links_args([LINKS, "https://b.example/x.html"]) == [
        "--find-links", LINKS, "--find-links", "https://b.example/x.html",
    ]  # fmt: skip


def test_a_links_page_that_fails_is_named_as_a_find_links_location() -> None:
    stderr = (
        f"error: Failed to fetch: `{LINKS}envd_flat-1.0-py3-none-any.whl`\n"
        "  Caused by: HTTP status server error (502 Bad Gateway)\n"
    )
    target = pypi_target("linux-64", "3.11", {})
    error, transient = _explain(stderr, target, ["envd-flat"], [INDEX], 2, [LINKS])
    assert transient and isinstance(error, ChannelError)
    assert error.message.startswith(
        f"failed to fetch from find-links location `{LINKS}` for `linux-64` (2 attempts): "
    )
    assert error.message.endswith("HTTP status server error (502 Bad Gateway)")
    index_error, _ = _explain(stderr.replace(LINKS, INDEX + "/"), target, ["x"], [INDEX], 1)
    assert index_error.message.startswith(f"failed to fetch from PyPI index `{INDEX}` ")
