"""SIGINT/SIGTERM as a clean stop of a running game day or experiment set.

The signal only asks the runner to stop: it forwards SIGTERM to the running ``chaos run``
(which then writes an interrupted journal) and starts nothing new; the runner restores
afterwards. Shared by ``chaosmesh gameday`` and ``chaosmesh run``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click

from chaosmesh_ext.gameday.runner import GameDayRunner


class Stopper:
    """Turns SIGINT/SIGTERM into a clean stop of whatever runs (and wakes any sleep)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.runner: GameDayRunner | None = None
        self.signal: int | None = None

    def attach(self, runner: GameDayRunner | None) -> None:
        self.runner = runner
        if runner is not None and self.event.is_set():
            runner.stop()

    def nap(self, seconds: float) -> None:
        """The scheduler's sleep: returns early when a signal asks to stop."""
        self.event.wait(seconds)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum
        self.event.set()
        click.echo(f"received {signal.Signals(signum).name}: stopping cleanly", err=True)
        if self.runner is not None:
            self.runner.stop()


@contextmanager
def stop_on_signals(stopper: Stopper) -> Iterator[None]:
    previous = {s: signal.signal(s, stopper.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
