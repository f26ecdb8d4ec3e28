"""Git requirements (`name @ git+https://host/repo.git@rev#subdirectory=x`), packed by the
client like a local directory: cloned here (this machine's git, network and logins), checked
out at `rev` (a branch, a tag or a commit; HEAD when none), submodules included, then the
project packed into a deterministic sdist by `client/local_sources.py` and named by its sha256
(`envd-source://`). Agents never see the git URL: they build bytes they can verify.

The commit is recorded inside the sdist (`<top>/ENVD-GIT-SOURCE`: the URL with credentials
masked, the commit, the subdirectory), so the source a description's `built.source` names says
where it came from; the same commit of the same URL gives the same bytes (and req_id), a new
commit a new one. URLs are masked (`envd.redaction`) in every message.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from envd.errors import InvalidSpecError
from envd.redaction import mask_text, mask_url
from envd.redaction import tail as log_tail

from .local_sources import DEFAULT_BUILD_TIMEOUT, PackedSource, normalize_sdist, pack_source

ORIGIN_MEMBER = "ENVD-GIT-SOURCE"
_TRANSPORTS = ("https", "http", "file", "ssh")
_HEX = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


@dataclass(frozen=True, slots=True)
class GitRequirement:
    """A `git+…` requirement URL taken apart: what git clones, the rev, the subdirectory."""

    url: str
    rev: str | None
    subdirectory: str | None

    @property
    def shown(self) -> str:
        return mask_url(self.url)

    @property
    def named(self) -> str:
        """The masked URL with the rev and subdirectory the requirement names."""
        rev = f"@{self.rev}" if self.rev else ""
        sub = f"#subdirectory={self.subdirectory}" if self.subdirectory else ""
        return f"{self.shown}{rev}{sub}"


def git_requirement(url: str) -> GitRequirement | None:
    """The parts of a `git+` URL (None for any other URL); a transport git can't be asked for
    from here, or a rev that looks like an option, is an `InvalidSpecError`."""
    if not url.lower().startswith("git+"):
        return None
    parts = urlsplit(url[4:])
    if parts.scheme.lower() not in _TRANSPORTS:
        raise InvalidSpecError(
            f"failed to read git requirement `{mask_text(url)}`: envd-client clones "
            f"{', '.join('git+' + t for t in _TRANSPORTS)} URLs, not `git+{parts.scheme}`",
            hint="name the repository by one of those URLs, or clone it and name the folder",
        )
    path, at, rev = parts.path.rpartition("@")
    if not at or "/" in rev:  # `@` inside an earlier path segment is not a rev
        path, rev = parts.path, ""
    rev = unquote(rev)
    if rev.startswith("-"):
        raise InvalidSpecError(
            f"failed to read git requirement `{mask_text(url)}`: the rev `{rev}` starts with `-`",
            hint="name a branch, a tag or a commit",
        )
    subdirectory = "".join(parse_qs(parts.fragment).get("subdirectory", [])[:1]).strip("/")
    clone = urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
    return GitRequirement(clone, rev or None, subdirectory or None)


@dataclass(frozen=True, slots=True)
class Checkout:
    project: Path
    commit: str


def check_out(
    requirement: GitRequirement, name: str, scratch: Path, *,
    timeout: float = DEFAULT_BUILD_TIMEOUT, environ: Mapping[str, str] | None = None,
) -> Checkout:  # fmt: skip
    """Clone the repository into a temp folder under `scratch` and check out the rev (and its
    submodules), all within `timeout` seconds; the project folder and the commit."""
    repo = Path(tempfile.mkdtemp(prefix="git-", dir=scratch))
    git = _Git(requirement, name, repo, time.monotonic() + timeout, timeout, environ)
    git.run("clone", "--quiet", "--filter=blob:none", "--no-checkout", "--", requirement.url,
            str(repo), cwd=scratch, doing="clone")  # fmt: skip
    commit = git.commit_of(requirement.rev)
    git.run("-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit,
            doing=f"check out {commit}")  # fmt: skip
    if (repo / ".gitmodules").is_file():
        git.run("submodule", "update", "--init", "--recursive", "--quiet",
                doing="check out the submodules")  # fmt: skip
    project = repo
    if requirement.subdirectory:
        project = (repo / requirement.subdirectory).resolve()
        if not project.is_relative_to(repo.resolve()) or not project.is_dir():
            raise InvalidSpecError(
                f"failed to pack `{name}` from `{requirement.shown}` at {commit}: no "
                f"subdirectory `{requirement.subdirectory}` there",
                hint="check the `#subdirectory=` fragment against the repository",
            )
    return Checkout(project, commit)


def pack_git_source(
    name: str, url: str, scratch: Path, *, python: str, timeout: float = DEFAULT_BUILD_TIMEOUT,
    environ: Mapping[str, str] | None = None,
) -> PackedSource:  # fmt: skip
    """The git requirement's project at its commit, packed as a local directory is, with the
    origin recorded in the sdist (so a new commit is a new source)."""
    requirement = git_requirement(url)
    assert requirement is not None, url
    checkout = check_out(requirement, name, scratch, timeout=timeout, environ=environ)
    origin = f"{requirement.shown}@{checkout.commit}"
    try:
        packed = pack_source(name, checkout.project, scratch, python=python, timeout=timeout,
                             environ=environ)  # fmt: skip
    except InvalidSpecError as err:  # named by where it came from, not the temp checkout
        shown = err.message.replace(f"local project `{checkout.project}`", f"`{name}` from "
                                    f"`{origin}`").replace(str(checkout.project), origin)  # fmt: skip
        raise InvalidSpecError(shown, hint=err.hint) from err
    record = f"url = {requirement.shown}\ncommit = {checkout.commit}\n"
    if requirement.subdirectory:
        record += f"subdirectory = {requirement.subdirectory}\n"
    stamp_origin(packed.path, record)
    data = packed.path.read_bytes()
    return replace(packed, origin=f"git+{origin}", sha256=hashlib.sha256(data).hexdigest(),
                   size=len(data), commit=checkout.commit, named=requirement.named)  # fmt: skip


def stamp_origin(sdist: Path, record: str) -> None:
    """Add `<top>/ENVD-GIT-SOURCE` to a packed sdist and re-pack it deterministically."""
    with tarfile.open(sdist, "r:gz") as source:
        members = [(m, source.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
                   for m in source.getmembers()]  # fmt: skip
    top = members[0][0].name.split("/", 1)[0]
    with tarfile.open(sdist, "w:gz") as target:
        for member, data in members:
            target.addfile(member, io.BytesIO(data) if data is not None else None)
        info = tarfile.TarInfo(f"{top}/{ORIGIN_MEMBER}")
        body = record.encode()
        info.size = len(body)
        target.addfile(info, io.BytesIO(body))
    normalize_sdist(sdist)


class _Git:
    """git commands in the checkout under one deadline; failures named with the URL masked."""

    def __init__(
        self, requirement: GitRequirement, name: str, repo: Path, deadline: float,
        timeout: float, environ: Mapping[str, str] | None,
    ) -> None:  # fmt: skip
        self.requirement, self.name, self.repo = requirement, name, repo
        self.deadline, self.timeout = deadline, timeout
        env = dict(os.environ if environ is None else environ)
        # never wait for a password on a terminal; messages in one language
        env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GCM_INTERACTIVE="never")
        self.env = env

    def commit_of(self, rev: str | None) -> str:
        """The commit `rev` names: a tag, a branch of the remote, or a commit; HEAD when none."""
        candidates = (
            ["HEAD"] if rev is None else [f"refs/tags/{rev}", f"refs/remotes/origin/{rev}", rev]
        )
        for candidate in candidates:
            found = self.output("rev-parse", "--verify", "--quiet", "--end-of-options",
                                f"{candidate}^{{commit}}")  # fmt: skip
            if found:
                return found
        if rev is not None and _HEX.match(rev):  # a commit no branch or tag points to
            fetched = self._call(["fetch", "--quiet", "origin", rev], self.repo)
            if fetched.returncode == 0:
                found = self.output("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
                if found:
                    return found
        what = "the default branch (HEAD)" if rev is None else f"the rev `{rev}`"
        raise InvalidSpecError(
            f"failed to pack `{self.name}` from `{self.requirement.shown}`: {what} is not a "
            "branch, tag or commit of that repository",
            hint="check the part after `@` in the requirement (`git ls-remote URL` lists "
            "branches and tags)",
        )

    def output(self, *args: str) -> str:
        return self._call(list(args), self.repo).stdout.strip()

    def run(self, *args: str, doing: str, cwd: Path | None = None) -> None:
        done = self._call(list(args), cwd or self.repo)
        if done.returncode != 0:
            tail = log_tail(mask_text(done.stderr))
            raise InvalidSpecError(
                f"failed to pack `{self.name}` from `{self.requirement.shown}`: `git {doing}` "
                f"exited {done.returncode}: {tail or 'no output'}",
                hint="check the URL and that this machine can reach it (`git clone` it "
                "here; logins come from your git credential helper or ssh agent)",
            )

    def _call(self, args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        left = self.deadline - time.monotonic()
        try:
            process = subprocess.Popen(
                ["git", *args], cwd=cwd, env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                start_new_session=True,
            )  # fmt: skip
        except FileNotFoundError as err:
            raise InvalidSpecError(
                f"failed to pack `{self.name}` from `{self.requirement.shown}`: git is not "
                "installed here",
                hint="install git, or clone the repository elsewhere and name the folder",
            ) from err
        try:
            stdout, stderr = process.communicate(timeout=max(left, 0.001))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # git's helpers (remote-https, ssh) too
            process.communicate()
            raise InvalidSpecError(
                f"failed to pack `{self.name}` from `{self.requirement.shown}`: git took over "
                f"{self.timeout:g} s",
                hint="check that this machine can reach the repository",
            ) from None
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
