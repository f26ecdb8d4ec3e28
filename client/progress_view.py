"""Progress on stderr while a resolve runs: what each platform's job is doing and for how long.

While a platform runs, its line says whether this request made a `new job` or `joined a job in
flight`; the outcome words (`cache_hit`, `dedup`, `resolved`, `failed`) appear only once the
platform has ended. On a TTY the running lines are redrawn in place with their elapsed time;
elsewhere each event is one line.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from envd.progress import Outcome, ResolveEvent, Stage
from envd.redaction import mask_text

from .colour import Palette

Clock = Callable[[], float]
TICK = 0.5  # seconds between redraws of the running lines on a TTY
_JOB_WORDS = {Outcome.RESOLVED: "new job", Outcome.DEDUP: "joined a job in flight"}


def seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 60 else f"{int(value // 60)} min {value % 60:02.0f} s"


def job_word(event: ResolveEvent, following: bool = False) -> str:
    """What this request's relation to a running job is; `following` is `envd-client wait`."""
    if following:
        return "following job"
    return _JOB_WORDS.get(event.outcome, "job") if event.outcome else "job"


class ProgressPrinter:
    """Called with every event; `elapsed` keeps each platform's time to its end."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        quiet: bool = False,
        following: bool = False,
        show_errors: bool = False,
        palette: Palette | None = None,
        live: bool | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        stream = sys.stderr if stream is None else stream  # as it is now, not at import
        self.stream = stream
        self.quiet = quiet
        self.following = following
        self.show_errors = show_errors  # errors are printed once: here only when nothing else will
        self.palette = palette or Palette.for_stream(stream)
        self.live = stream.isatty() if live is None else live
        self.clock = clock
        self.started = clock()
        self.elapsed: dict[str, float] = {}
        self._running: dict[str, ResolveEvent] = {}
        self._drawn = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> ProgressPrinter:
        if self.live and not self.quiet:
            self._ticker = threading.Thread(target=self._tick, name="envd-progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._redraw([])

    def __call__(self, event: ResolveEvent) -> None:
        now = self.clock() - self.started
        with self._lock:
            if event.stage.terminal:
                self._running.pop(event.platform, None)
                self.elapsed[event.platform] = now
                if not self.quiet:
                    self._redraw([self.ended_line(event, now)])
                return
            self._running[event.platform] = event
            if self.quiet:
                return
            if self.live:
                self._redraw([])
            else:
                self.stream.write(self.running_line(event, now) + "\n")
                self.stream.flush()

    def notice(self, text: str) -> None:
        """A message for the person waiting (the coordinator went away, re-attached…)."""
        with self._lock:
            self._redraw([self.palette.style(text, "yellow")])

    def running_line(self, event: ResolveEvent, elapsed: float) -> str:
        what = event.message or str(event.stage)
        job = f"{job_word(event, self.following)} {event.job_id}".rstrip()
        return f"{event.platform}: {job}: {what} ({seconds(elapsed)})"

    def ended_line(self, event: ResolveEvent, elapsed: float) -> str:
        outcome = Outcome.FAILED if event.stage is Stage.FAILED else event.outcome
        word = self.palette.word(str(outcome) if outcome else str(event.stage))
        if outcome is Outcome.CACHE_HIT:
            return f"{event.platform}: {word}"
        line = f"{event.platform}: {word} after {seconds(elapsed)}"
        if outcome is not Outcome.FAILED and event.agent:
            line += f" on agent `{event.agent}`"
        if self.show_errors and event.error is not None:
            line += f": {mask_text(event.error.message)}"
        return line

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            with self._lock:
                if self._running:
                    self._redraw([])

    def _redraw(self, finished: list[str]) -> None:
        """Erase the running lines, print what ended, then the running lines again (TTY);
        without a TTY only what ended is printed."""
        out = []
        if self.live and self._drawn:
            out.append(f"\033[{self._drawn}F\033[J")
        out.extend(line + "\n" for line in finished)
        self._drawn = 0
        if self.live and not self._stop.is_set():
            now = self.clock() - self.started
            width = shutil.get_terminal_size().columns - 1  # a wrapped line would break the redraw
            for event in self._running.values():
                out.append(self.running_line(event, now)[:width] + "\n")
            self._drawn = len(self._running)
        if out:
            self.stream.write("".join(out))
            self.stream.flush()
