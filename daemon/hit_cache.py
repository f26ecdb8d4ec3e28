"""The cache-hit fast path: answers already encoded, so a repeated request costs a dict lookup.

What it may serve: only an answer built from a default pointer and description the catalog
read and verified. An entry is served as is for `fresh_for` seconds after its pointer was last
read; after that the pointer is read again (one small object), and the entry is kept only if
the pointer is unchanged (same full_id, same resolution time). A job this coordinator
completes forgets its (req_id, platform) at once; `fresh_for` bounds how long a pointer moved
by another coordinator sharing the store goes unseen.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from envd.catalog import Catalog
from envd.clock import Clock

# an answer per (req_id, platform, archives or not); specs by their wire bytes
DEFAULT_ENTRIES = 4096
DEFAULT_FRESH_FOR = 1.0


@dataclass(slots=True)
class _Answer:
    encoded: bytes
    pointer: Any  # the DefaultPointer the answer was built from
    checked_at: float


class HitCache:
    def __init__(
        self, catalog: Catalog, clock: Clock, *, entries: int = DEFAULT_ENTRIES,
        fresh_for: float = DEFAULT_FRESH_FOR,
    ) -> None:  # fmt: skip
        self.catalog = catalog
        self.clock = clock
        self.entries = entries
        self.fresh_for = fresh_for
        self._req_ids: OrderedDict[bytes, str] = OrderedDict()
        self._answers: OrderedDict[tuple[str, str, bool], _Answer] = OrderedDict()

    def req_id_of(self, spec_bytes: bytes, compute: Callable[[], str]) -> str:
        """The req_id of a spec as sent on the wire (normalizing it only the first time)."""
        found = self._req_ids.get(spec_bytes)
        if found is None:
            found = compute()
            self._req_ids[spec_bytes] = found
            _trim(self._req_ids, self.entries)
        return found

    def known_req_id(self, spec_bytes: bytes) -> str | None:
        return self._req_ids.get(spec_bytes)

    async def answers(
        self, req_id: str, platforms: Sequence[str], no_archives: bool
    ) -> list[bytes] | None:
        """The encoded cache-hit answer for every platform, or None if any is missing."""
        found = []
        for platform in platforms:
            key = (req_id, platform, no_archives)
            answer = self._answers.get(key)
            if answer is None:
                return None
            if self.clock.now() - answer.checked_at > self.fresh_for:
                pointer = await asyncio.to_thread(self.catalog.get_default, req_id, platform)
                if pointer != answer.pointer:
                    self._answers.pop(key, None)
                    return None
                answer.checked_at = self.clock.now()
            found.append(answer.encoded)
        return found

    def remember(
        self, req_id: str, platform: str, no_archives: bool, encoded: bytes, pointer: Any
    ) -> None:
        if pointer is None:
            return
        self._answers[(req_id, platform, no_archives)] = _Answer(encoded, pointer, self.clock.now())
        _trim(self._answers, self.entries)

    def forget(self, req_id: str, platform: str) -> None:
        for no_archives in (False, True):
            self._answers.pop((req_id, platform, no_archives), None)


def _trim(table: OrderedDict[Any, Any], size: int) -> None:
    while len(table) > size:
        table.popitem(last=False)
