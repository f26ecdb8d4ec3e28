"""Fetching archives: streamed and hashed, local and HTTP, credentials by origin, retries."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from base64 import b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from envd.agents.credentials import ChannelCredentials
from envd.agents.fetch import (
    FetchCancelled,
    Fetcher,
    local_path,
    redact_text,
    redact_url,
)
from envd.errors import ChannelError, StageTimeoutError
from faulty_channel import ARCHIVE as SLOW_ARCHIVE
from faulty_channel import serve_slow_archive, stalled_server, write_one_package_channel

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE = ROOT / "fixtures" / "packages" / "conda-package-handling" / "mock-2.0.0-py37_1000.tar.bz2"
DATA = ARCHIVE.read_bytes()
SHA256 = hashlib.sha256(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()


@dataclass
class Script:
    """What the test server answers: per path, a list of (status, body) used in turn."""

    answers: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    seen: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Authorization)
    redirect_to: str = ""
    short_body: bool = False  # announce the full length, send half: a dropped connection


@contextmanager
def server(script: Script) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.seen.append((self.path, self.headers.get("Authorization")))
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", script.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            queue = script.answers.get(self.path, [(404, b"")])
            status, body = queue.pop(0) if len(queue) > 1 else queue[0]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if script.short_body else body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def no_sleep(delays: list[float]) -> Fetcher:
    return Fetcher(attempts=3, base_delay=0.01, sleep=delays.append)


def test_fetches_a_local_path_and_a_file_url_hashing_the_bytes(tmp_path: Path) -> None:
    for source in (str(ARCHIVE), ARCHIVE.as_uri()):
        dest = tmp_path / "out.tar.bz2"
        fetched = Fetcher().fetch(source, dest)
        assert (fetched.path, fetched.sha256, fetched.md5, fetched.size) == (
            dest, SHA256, MD5, len(DATA),
        )  # fmt: skip
        assert dest.read_bytes() == DATA
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tar.bz2"]
        dest.unlink()


def test_local_path_understands_file_urls() -> None:
    assert local_path("file:///srv/chan/noarch/a%20b.conda") == Path("/srv/chan/noarch/a b.conda")
    assert local_path("file://localhost/srv/x.conda") == Path("/srv/x.conda")
    assert local_path("/srv/x.conda") == Path("/srv/x.conda")


def test_missing_local_archive_names_the_url(tmp_path: Path) -> None:
    url = (tmp_path / "gone.conda").as_uri()
    with pytest.raises(ChannelError, match=f"failed to fetch archive `{url}`: no such file"):
        Fetcher().fetch(url, tmp_path / "x.conda")
    assert list(tmp_path.iterdir()) == []


def test_fetches_over_http(tmp_path: Path) -> None:
    script = Script({"/noarch/a.tar.bz2": [(200, DATA)]})
    with server(script) as url:
        fetched = Fetcher().fetch(f"{url}/noarch/a.tar.bz2", tmp_path / "a.tar.bz2")
    assert (fetched.sha256, fetched.size) == (SHA256, len(DATA))
    assert script.seen == [("/noarch/a.tar.bz2", None)]


def test_transient_http_errors_are_retried(tmp_path: Path) -> None:
    script = Script({"/a": [(503, b"busy"), (502, b"bad gateway"), (200, DATA)]})
    delays: list[float] = []
    with server(script) as url:
        fetched = no_sleep(delays).fetch(f"{url}/a", tmp_path / "a")
    assert fetched.sha256 == SHA256
    assert len(delays) == 2 and len(script.seen) == 3


def test_not_found_fails_at_once_naming_the_url(tmp_path: Path) -> None:
    delays: list[float] = []
    with server(Script()) as url:
        with pytest.raises(ChannelError) as info:
            no_sleep(delays).fetch(f"{url}/noarch/gone.conda", tmp_path / "gone.conda")
    assert info.value.message == (
        f"failed to fetch archive `{url}/noarch/gone.conda`: HTTP 404 Not Found"
    )
    assert delays == [] and list(tmp_path.iterdir()) == []


def test_unreachable_host_fails_after_the_retries_naming_the_url(tmp_path: Path) -> None:
    delays: list[float] = []
    with pytest.raises(ChannelError) as info:
        no_sleep(delays).fetch("http://127.0.0.1:9/chan/noarch/a.conda", tmp_path / "a.conda")
    assert info.value.message == (
        "failed to fetch archive `http://127.0.0.1:9/chan/noarch/a.conda` after 3 attempts: "
        "Connection refused"
    )
    assert len(delays) == 2


def test_a_dropped_connection_is_retried_then_reported(tmp_path: Path) -> None:
    script = Script({"/a": [(200, DATA)]}, short_body=True)
    delays: list[float] = []
    with server(script) as url, pytest.raises(ChannelError) as info:
        no_sleep(delays).fetch(f"{url}/a", tmp_path / "a")
    assert info.value.message == (
        f"failed to fetch archive `{url}/a` after 3 attempts: "
        f"the connection closed {len(DATA) - len(DATA) // 2} bytes short of the end"
    )
    assert len(script.seen) == 3 and list(tmp_path.iterdir()) == []


def test_reading_stops_one_byte_past_max_size(tmp_path: Path) -> None:
    fetched = Fetcher().fetch(str(ARCHIVE), tmp_path / "a", max_size=100)
    assert fetched.size == 101
    assert fetched.sha256 == hashlib.sha256(DATA[:101]).hexdigest()


def test_cancel_stops_the_download_and_leaves_no_file(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(FetchCancelled):
        Fetcher().fetch(str(ARCHIVE), tmp_path / "a", cancel=cancel)
    assert list(tmp_path.iterdir()) == []


def test_a_host_that_never_answers_fails_after_each_attempt_times_out(tmp_path: Path) -> None:
    delays: list[float] = []
    fetcher = Fetcher(attempts=2, base_delay=0.01, timeout=0.3, sleep=delays.append)
    with stalled_server() as stalled:
        start = time.monotonic()
        with pytest.raises(StageTimeoutError) as info:
            fetcher.fetch(f"{stalled.url}/noarch/a.conda", tmp_path / "a.conda")
        elapsed = time.monotonic() - start
        assert len(stalled.connections) == 2
    assert info.value.message == (
        f"timed out fetching archive `{stalled.url}/noarch/a.conda`: no data for 0.3 s "
        "(attempt 2 of 2)"
    )
    assert info.value.hint is not None and "`--fetch-timeout`" in info.value.hint
    assert 0.6 <= elapsed < 2.0 and len(delays) == 1
    assert list(tmp_path.iterdir()) == []


def test_cancel_stops_a_trickling_download_within_a_read(tmp_path: Path) -> None:
    write_one_package_channel(tmp_path / "channel")
    cancel = threading.Event()
    errors: list[BaseException] = []

    def fetch(url: str) -> None:
        try:
            Fetcher(timeout=30.0).fetch(url, tmp_path / "out" / SLOW_ARCHIVE, cancel=cancel)
        except BaseException as err:
            errors.append(err)

    (tmp_path / "out").mkdir()
    with serve_slow_archive(tmp_path / "channel", "trickle") as served:
        thread = threading.Thread(target=fetch, args=(f"{served.url}/noarch/{SLOW_ARCHIVE}",))
        thread.start()
        assert served.started.wait(10)
        time.sleep(0.2)  # some bytes are in
        cancel.set()
        thread.join(timeout=2.0)
        assert not thread.is_alive()
    assert [type(e) for e in errors] == [FetchCancelled]
    assert list((tmp_path / "out").iterdir()) == []


def test_unsupported_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ChannelError, match="scheme `ftp` is not supported"):
        Fetcher().fetch("ftp://example.com/a.conda", tmp_path / "a.conda")


def origin(url: str) -> str:
    return url.removeprefix("http://")


def loopback(tokens: dict[str, str], *urls: str, netrc: Path | None = None) -> ChannelCredentials:
    """Credentials for loopback servers: plain http, so their origins are marked plain-http."""
    return ChannelCredentials(tokens, netrc, frozenset(origin(url) for url in urls))


def test_token_goes_only_to_its_origin_and_never_across_a_redirect(tmp_path: Path) -> None:
    first, second = Script({"/a": [(200, DATA)]}), Script({"/b": [(200, DATA)]})
    with server(first) as url_a, server(second) as url_b:
        second.redirect_to = f"{url_a}/a"
        tokens = {origin(url_a): "s3cret", origin(url_b): "s3cret"}
        fetcher = Fetcher(loopback(tokens, url_a, url_b))
        fetcher.fetch(f"{url_a}/a", tmp_path / "a")
        fetcher.fetch(f"{url_b}/redirect", tmp_path / "b")
        assert first.seen[0] == ("/a", "Bearer s3cret")
        assert second.seen == [("/redirect", "Bearer s3cret")]
        assert first.seen[1] == ("/a", None)  # the redirect target got no credentials
        Fetcher(loopback({"example.com": "other"}, url_a)).fetch(f"{url_a}/a", tmp_path / "c")
        assert first.seen[2] == ("/a", None)


def test_a_token_goes_neither_to_another_port_nor_over_unmarked_http(tmp_path: Path) -> None:
    first, second = Script({"/a": [(200, DATA)]}), Script({"/a": [(200, DATA)]})
    with server(first) as url_a, server(second) as url_b:
        # a bare host once reached every port of it: now only the scheme's default one
        Fetcher(loopback({"127.0.0.1": "s3cret"}, url_a)).fetch(f"{url_a}/a", tmp_path / "a")
        # the token of one port is not sent to another port of the same host
        Fetcher(loopback({origin(url_a): "s3cret"}, url_a, url_b)).fetch(
            f"{url_b}/a", tmp_path / "b"
        )
        # the right origin, but plain http that the operator did not mark: nothing is sent
        Fetcher(loopback({origin(url_a): "s3cret"})).fetch(f"{url_a}/a", tmp_path / "c")
        Fetcher(loopback({origin(url_a): "s3cret"}, url_a)).fetch(f"{url_a}/a", tmp_path / "d")
    assert first.seen == [("/a", None), ("/a", None), ("/a", "Bearer s3cret")]
    assert second.seen == [("/a", None)]


def test_netrc_gives_basic_auth_for_its_host(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password pa55\n")
    netrc.chmod(0o600)
    script = Script({"/a": [(200, DATA)]})
    with server(script) as url:
        Fetcher(ChannelCredentials({}, netrc)).fetch(f"{url}/a", tmp_path / "a")  # plain http
        Fetcher(loopback({}, url, netrc=netrc)).fetch(f"{url}/a", tmp_path / "b")
    assert script.seen == [("/a", None), ("/a", "Basic " + b64encode(b"alice:pa55").decode())]


def test_refused_credentials_hint_at_netrc_and_the_token_variable(tmp_path: Path) -> None:
    script = Script({"/a": [(401, b"")]})
    with server(script) as url, pytest.raises(ChannelError) as info:
        Fetcher(loopback({origin(url): "s3cret"})).fetch(f"{url}/a", tmp_path / "a")
    assert info.value.message == f"failed to fetch archive `{url}/a`: HTTP 401 Unauthorized"
    assert info.value.hint == (
        "the channel wants credentials: add its host to the agent's netrc file or to "
        "`ENVD_CHANNEL_TOKEN` (`HOST[:PORT]=TOKEN`); over plain http they go only to hosts the "
        "agent marks with `--plain-http-host HOST[:PORT]`"
    )
    assert "s3cret" not in f"{info.value.message} {info.value.hint}"


def test_redact_text_redacts_every_url_in_a_message() -> None:
    text = (
        "Request failed after 3 retries\nCaused by: error sending request for url "
        "(https://bob:pw@repo.corp/t/tk-1/main/linux-64/repodata.json?x=1)"
    )
    assert redact_text(text) == (
        "Request failed after 3 retries\nCaused by: error sending request for url "
        "(https://repo.corp/t/<token>/main/linux-64/repodata.json)"
    )


def test_redact_url_drops_user_info_and_conda_tokens() -> None:
    assert redact_url("https://bob:pw@repo.corp/t/tk-123/main/noarch/a.conda?x=1") == (
        "https://repo.corp/t/<token>/main/noarch/a.conda"
    )
    assert redact_url("http://127.0.0.1:8000/noarch/a.conda") == (
        "http://127.0.0.1:8000/noarch/a.conda"
    )
