"""PyPI index logins for uv: a netrc of the agent's own logins for the spec's index hosts only,
never over plain http unless the operator marks the origin."""

from __future__ import annotations

import stat
from pathlib import Path

from envd.agents.credentials import ChannelCredentials


def test_only_the_index_hosts_logins_over_https_or_marked_plain_http(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(
        "machine pypi.corp.example login alice password s3cret\n"
        "machine 127.0.0.1 login bob password hunter2\n"
        "machine other.example login carol password nope\n"
    )
    credentials = ChannelCredentials(netrc_path=netrc)
    out = tmp_path / "uv-netrc"
    urls = ["https://pypi.corp.example/simple", "http://127.0.0.1:8080/simple"]
    assert credentials.write_index_netrc(urls, out) == out
    assert out.read_text() == "machine pypi.corp.example login alice password s3cret\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    marked = ChannelCredentials(netrc_path=netrc, plain_http=frozenset({"127.0.0.1:8080"}))
    assert marked.write_index_netrc(urls[1:], out) == out
    assert out.read_text() == "machine 127.0.0.1 login bob password hunter2\n"
    assert credentials.write_index_netrc(["https://pypi.org/simple"], tmp_path / "none") is None
    assert not (tmp_path / "none").exists()
    assert ChannelCredentials().write_index_netrc(urls, tmp_path / "none") is None
