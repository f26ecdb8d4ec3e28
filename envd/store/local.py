"""`LocalStore`: the store on a local (or NFS) directory, safe for many processes at once.

Every write goes to a temp file beside its key (`.<name>.<random>.tmp`, same directory so the
rename is atomic), is fsynced, then appears under its key in one step: `os.link` for create-only
writes (exactly one racer can win) and `os.replace` for compare-and-swap. Compare-and-swap and
delete hold an exclusive `flock` on `.<name>.lock` beside the key; lock files are never removed,
since unlinking a lock file another process waits on would break mutual exclusion. Dot files are
never keys (`check_key`), so `list` skips them.

The version of an object is the sha256 of its bytes. A file under a key is only ever replaced
whole, so one open file yields a consistent (bytes, version) pair without a lock, and a CAS
succeeds exactly when the current bytes are the ones the caller read.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from envd.errors import PreconditionFailed, StoreError
from envd.store.base import ObjectInfo, check_key, check_prefix

_LOCK_SUFFIX = ".lock"
_TEMP_SUFFIX = ".tmp"
COPY_CHUNK = 1024 * 1024
_STORE_HINT = "check that the store directory exists, is writable, and has free space"


class LocalStore:
    """A store rooted at a directory; `url` is `file://<root>`."""

    def __init__(self, root: Path) -> None:
        self._root = Path(os.path.abspath(root))

    @property
    def root(self) -> Path:
        return self._root

    @property
    def url(self) -> str:
        return self._root.as_uri()

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        if path.is_file():
            return False  # skips writing a temp copy of an archive that is already there
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            created = self._publish_new(path, data)
        except OSError as err:
            raise self._error("write", key, err) from err
        return created

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as err:
            raise self._error("read", key, err) from err

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        data = self.get(key)
        if data is None:
            return None
        return data, _version(data)

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            with path.open("rb") as f:
                facts = os.fstat(f.fileno())
                version = hashlib.file_digest(f, "sha256").hexdigest()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as err:
            raise self._error("stat", key, err) from err
        return ObjectInfo(key=key, size=facts.st_size, version=version, modified=facts.st_mtime)

    def leftovers(self, older_than: float) -> list[ObjectInfo]:
        """Temp files (`.<name>.<random>.tmp`) of writers killed before their rename."""
        found = []
        for dirpath, _, filenames in os.walk(self._root):
            for name in filenames:
                if not _is_temp(name):
                    continue
                path = Path(dirpath) / name
                try:
                    facts = path.stat()
                except FileNotFoundError:
                    continue  # renamed into place or removed meanwhile
                if facts.st_mtime < older_than:
                    rel = path.relative_to(self._root).as_posix()
                    found.append(ObjectInfo(rel, facts.st_size, "", facts.st_mtime))
        return sorted(found, key=lambda info: info.key)

    def remove_leftover(self, name: str) -> None:
        path = self._root.joinpath(*name.split("/"))
        if ".." in name.split("/") or not _is_temp(path.name):
            raise StoreError(f"failed to remove `{name}`: not a temp file of store `{self.url}`")
        path.unlink(missing_ok=True)

    def list(self, prefix: str) -> list[str]:
        check_prefix(prefix)
        folder, _, _ = prefix.rpartition("/")
        base = self._root.joinpath(*folder.split("/")) if folder else self._root
        if not base.is_dir():
            return []
        keys: list[str] = []
        try:
            for dirpath, dirnames, filenames in os.walk(base, onerror=_raise):
                rel = Path(dirpath).relative_to(self._root).as_posix()
                rel = "" if rel == "." else f"{rel}/"
                dirnames[:] = sorted(
                    d for d in dirnames if not d.startswith(".") and _may_hold(rel + d, prefix)
                )
                keys.extend(
                    rel + name
                    for name in filenames
                    if not name.startswith(".") and (rel + name).startswith(prefix)
                )
        except OSError as err:
            raise self._error("list", prefix, err) from err
        return sorted(keys)

    def compare_and_swap(self, key: str, expected_version: str | None, data: bytes) -> str:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked(path):
                current = self._current_version(path)
                if current != expected_version:
                    raise self._conflict(key, expected_version, current)
                if expected_version is None:
                    # Create-only even under the lock: `put_if_absent` does not take it.
                    if not self._publish_new(path, data):
                        raise self._conflict(key, None, "a concurrent put")
                else:
                    self._publish_replace(path, data)
        except OSError as err:
            raise self._error("swap", key, err) from err
        return _version(data)

    def delete(self, key: str) -> None:
        path = self._path(key)
        if not path.parent.is_dir():
            return
        try:
            with self._locked(path):
                path.unlink(missing_ok=True)
                _fsync_dir(path.parent)
        except OSError as err:
            raise self._error("delete", key, err) from err

    def put_file_if_absent(self, key: str, path: Path) -> bool:
        target = self._path(key)
        if target.is_file():
            return False
        with path.open("rb") as source:  # a missing source is the caller's OSError, not ours
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                return self._publish_new(target, source)
            except OSError as err:
                raise self._error("write", key, err) from err

    def download(self, key: str, dest: Path) -> bool:
        source = self._path(key)
        temp = _temp_name(dest)
        try:
            with source.open("rb") as f, temp.open("xb") as out:
                shutil.copyfileobj(f, out, COPY_CHUNK)
            os.replace(temp, dest)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            temp.unlink(missing_ok=True)
            if not source.is_file():
                return False
            raise
        except OSError as err:
            temp.unlink(missing_ok=True)
            raise self._error("read", key, err) from err
        return True

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*check_key(key).split("/"))

    def _current_version(self, path: Path) -> str | None:
        try:
            with path.open("rb") as f:
                return hashlib.file_digest(f, "sha256").hexdigest()
        except FileNotFoundError:
            return None

    def _publish_new(self, path: Path, data: bytes | BinaryIO) -> bool:
        temp = _write_temp(path, data)
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        finally:
            temp.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        return True

    def _publish_replace(self, path: Path, data: bytes | BinaryIO) -> None:
        temp = _write_temp(path, data)
        try:
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        _fsync_dir(path.parent)

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        lock = path.with_name(f".{path.name}{_LOCK_SUFFIX}")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def _error(self, verb: str, key: str, err: OSError) -> StoreError:
        cause = err.strerror or str(err)
        return StoreError(f"failed to {verb} `{key}` in store `{self.url}`: {cause}", _STORE_HINT)

    def _conflict(self, key: str, expected: str | None, found: str | None) -> PreconditionFailed:
        return PreconditionFailed(
            f"failed to swap `{key}` in store `{self.url}`: expected version "
            f"`{expected or 'absent'}`, found `{found or 'absent'}`",
            hint="another writer changed the object; read it again and retry",
        )


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(_TEMP_SUFFIX)


def _version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(8)}{_TEMP_SUFFIX}")


def _write_temp(path: Path, data: bytes | BinaryIO) -> Path:
    """A durable copy of `data` (bytes, or a stream copied in chunks) beside `path`."""
    temp = _temp_name(path)
    try:
        with temp.open("xb") as f:
            if isinstance(data, bytes):
                f.write(data)
            else:
                shutil.copyfileobj(data, f, COPY_CHUNK)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _fsync_dir(folder: Path) -> None:
    """Make a rename or link durable; some file systems cannot fsync a directory."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _may_hold(folder: str, prefix: str) -> bool:
    """Whether keys under `folder` can start with `prefix` (prunes the walk)."""
    folder = f"{folder}/"
    return folder.startswith(prefix) or prefix.startswith(folder)


def _raise(err: OSError) -> None:
    raise err
