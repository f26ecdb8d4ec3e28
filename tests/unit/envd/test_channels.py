"""Channel names, aliases and URLs."""

from __future__ import annotations

from envd.channels import DEFAULT_CHANNEL_ALIAS, channel_url


def test_names_use_the_alias_and_urls_stay() -> None:
    assert DEFAULT_CHANNEL_ALIAS == "https://conda.anaconda.org"
    assert channel_url("conda-forge") == "https://conda.anaconda.org/conda-forge"
    assert (
        channel_url("conda-forge", "https://mirror.example/")
        == "https://mirror.example/conda-forge"
    )
    assert channel_url("file:///srv/chan/") == "file:///srv/chan"
    assert channel_url("http://127.0.0.1:8000/c") == "http://127.0.0.1:8000/c"
