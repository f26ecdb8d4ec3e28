"""What a second resolve uploads when it shares packages with one before: only what is new."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.channel import ROOT, ChannelMode, open_channel
from envd.client.api import EnvdClient
from envd.embedded import EmbeddedCoordinator
from envd.progress import Outcome
from envd.spec_input import load_spec
from envd.store.layout import PKGS

Progress = Callable[[str], None]
ARCHIVES_CHANNEL = ROOT / "examples" / "channels" / "archives-demo"
FIRST = ("cph_test_data",)  # a `.tar.bz2`: the store gets it and the `.conda` made from it
SECOND = ("envd-demo-hello",)  # a `.conda` that depends on the first
PLATFORM = "linux-64"  # the demo's packages are noarch; any platform its channel lists would do


@dataclass(frozen=True, slots=True)
class StoredBytes:
    """The archives under `pkgs/` in the store, by key."""

    sizes: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.sizes.values())

    def added_since(self, before: StoredBytes) -> dict[str, int]:
        return {key: size for key, size in self.sizes.items() if key not in before.sizes}


@dataclass(frozen=True, slots=True)
class Reresolve:
    first_specs: tuple[str, ...]
    first_stored_bytes: int  # under `pkgs/` after the first resolve
    first_stored_archives: int
    second_specs: tuple[str, ...]
    environment_bytes: int  # every archive of the second environment, transmuted ones too
    environment_archives: int
    uploaded_bytes: int  # new under `pkgs/` after the second resolve
    uploaded: tuple[str, ...]  # file names of the archives the second resolve uploaded


def measure_reresolve(mode: ChannelMode, home: Path, progress: Progress) -> Reresolve:
    """An embedded coordinator on a local store in `home`, resolving with archives; the store
    is read as files, so nothing else can have written to it."""
    with open_channel(mode, ARCHIVES_CHANNEL) as source:
        coordinator = EmbeddedCoordinator(home)
        store = Path(coordinator.store_url)
        with coordinator as target, EnvdClient(target) as client:
            client.info()
            progress(f"re-resolve: `{' '.join(FIRST)}` with archives")
            _resolve(client, FIRST, source.url)
            before = stored(store)
            progress(f"re-resolve: `{' '.join(SECOND)}`, which shares the first's package")
            description = _resolve(client, SECOND, source.url)
            after = stored(store)
    formats = [f for p in description["packages"] for f in p.get("formats", [])]
    added = after.added_since(before)
    return Reresolve(
        first_specs=FIRST,
        first_stored_bytes=before.total,
        first_stored_archives=len(before.sizes),
        second_specs=SECOND,
        environment_bytes=sum(int(f["size"]) for f in formats),
        environment_archives=len(formats),
        uploaded_bytes=after.total - before.total,
        uploaded=tuple(sorted(key.rpartition("/")[2] for key in added)),
    )


def stored(store: Path) -> StoredBytes:
    """Sizes of the objects under `<store>/pkgs/`; the local store's temp and lock files start
    with `.`, and are no objects."""
    root = store / PKGS
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return StoredBytes({p.relative_to(store).as_posix(): p.stat().st_size for p in files})


def _resolve(client: EnvdClient, packages: Sequence[str], channel: str) -> dict[str, Any]:
    spec = load_spec(packages=packages, channels=[channel]).spec
    result = client.resolve(spec, [PLATFORM], no_archives=False)
    event = result.events.get(PLATFORM)
    if event is None or event.outcome is not Outcome.RESOLVED or event.description is None:
        outcome = None if event is None else event.outcome
        detail = "" if event is None or event.error is None else f": {event.error}"
        raise RuntimeError(
            f"failed to benchmark re-resolve of `{' '.join(packages)}`: expected outcome "
            f"`{Outcome.RESOLVED}` with a description, got `{outcome}`{detail}"
        )
    return event.description
