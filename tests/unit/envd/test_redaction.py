"""Credentials in URLs masked wherever envd shows them (envd.redaction), printed errors too."""

from __future__ import annotations

import pytest

from envd.logs import report_error
from envd.redaction import mask_text, mask_url, masked


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:s3cret@pypi.corp/simple", "https://user:***@pypi.corp/simple"),
        ("https://user:s3cret@pypi.corp:8443/simple/", "https://user:***@pypi.corp:8443/simple/"),
        ("https://t0k3n@pypi.corp/simple", "https://***@pypi.corp/simple"),  # a token as user
        ("https://user:@pypi.corp/simple", "https://user:***@pypi.corp/simple"),
        ("https://pypi.org/simple", "https://pypi.org/simple"),
        ("git+ssh://git@github.com/org/repo", "git+ssh://git@github.com/org/repo"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_mask_text_masks_every_url_and_leaves_the_rest() -> None:
    text = (
        "pkg @ https://u:pw@files.corp/pkg-1.0-py3-none-any.whl ; python_version>'3', "
        "git+https://github.com/org/repo@v1.0, mail me@example.com, https://a:b@x.org"
    )
    assert mask_text(text) == (
        "pkg @ https://u:***@files.corp/pkg-1.0-py3-none-any.whl ; python_version>'3', "
        "git+https://github.com/org/repo@v1.0, mail me@example.com, https://a:***@x.org"
    )


def test_masked_walks_a_json_document() -> None:
    document = {"spec": {"pypi_indexes": ["https://u:pw@h/simple"], "python": None}, "n": 3}
    assert masked(document) == {"spec": {"pypi_indexes": ["https://u:***@h/simple"],
                                         "python": None}, "n": 3}  # fmt: skip


def test_a_printed_error_never_shows_a_urls_password(capsys: pytest.CaptureFixture[str]) -> None:
    report_error("index `https://u:pw@h/simple` failed", "see https://u:pw@h/")
    assert capsys.readouterr().err == (
        "error: index `https://u:***@h/simple` failed\nhint: see https://u:***@h/\n"
    )


def test_urls_urlsplit_refuses_are_handled_not_raised() -> None:
    """Found by the spec-reader fuzz: an unbalanced `[` makes urlsplit raise ValueError."""
    from envd.errors import InvalidSpecError, StoreError
    from envd.redaction import has_credentials, redact_url, refuse_store_credentials
    from envd.spec import RawSpec, normalize_spec

    bad = "https://user:pw@[::1/simple"
    assert "pw" not in mask_url(bad) and mask_url(bad).startswith("https://")
    assert redact_url(bad) == "https://…" and has_credentials(bad)
    with pytest.raises(StoreError, match="not a valid URL"):
        refuse_store_credentials("s3://[bucket", "h")
    with pytest.raises(InvalidSpecError, match=r"channel URL `http://…` is not a valid URL"):
        normalize_spec(RawSpec(channels=["http://[::1/chan"]))
