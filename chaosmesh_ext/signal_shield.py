"""Hold SIGTERM and Ctrl-C off the few moments of a run that must not be cut in half.

chaoslib turns SIGTERM into ``InterruptExecution`` (and Python turns Ctrl-C into
``KeyboardInterrupt``) wherever the main thread happens to be. Two moments of the safety
net must not be cut there:

- bringing the embedded mesh up (``configure_control``): an exception there is swallowed
  by chaoslib, and a mesh half started (or started after the signal) would be orphaned —
  or the run would go on against whatever cluster ``KUBECONFIG`` names. Under the shield a
  signal *cancels* the start-up instead (``on_signal``), the mesh is stopped, and the run
  ends before its method;
- restoring and stopping the mesh at the end (``after_experiment_control``,
  ``cleanup_control``): a second Ctrl-C there would skip the restore, leave the mesh
  running and lose the journal. Under the shield the clean-up finishes (every step of it is
  bounded) and the signal is only reported.

``shielded(on_signal)`` installs the handlers for the block (main thread only; elsewhere
signals cannot be handled and it does nothing) and puts the previous ones back after.
``Shield.received`` lists what arrived. ``Shield.redeliver()`` hands a signal that arrived
to the previous handler, so chaostoolkit can record it, swallowing what that handler raises.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

__all__ = ["Shield", "shielded"]

SIGNALS: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)


@dataclass
class Shield:
    """What arrived while the block ran, and the handlers it replaced."""

    received: list[int] = field(default_factory=list)
    previous: dict[int, Any] = field(default_factory=dict)

    @property
    def names(self) -> str:
        return ", ".join(signal.Signals(s).name for s in self.received)

    def redeliver(self) -> None:
        """Give the first signal received to the handler it was meant for (chaostoolkit
        records which signal interrupted a run there); what it raises is swallowed: the
        caller already stops the run its own way."""
        if not self.received:
            return
        signum = self.received[0]
        handler = self.previous.get(signum)
        if callable(handler):
            with contextlib.suppress(BaseException):
                handler(signum, None)


@contextlib.contextmanager
def shielded(on_signal: Callable[[int], None] = lambda signum: None) -> Iterator[Shield]:
    """SIGTERM and SIGINT call ``on_signal`` (and are noted) instead of raising, for the block."""
    shield = Shield()
    if threading.current_thread() is not threading.main_thread():
        yield shield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        shield.received.append(signum)
        on_signal(signum)

    for signum in SIGNALS:
        shield.previous[signum] = signal.signal(signum, handler)
    try:
        yield shield
    finally:
        for signum, previous in shield.previous.items():
            if previous is not None:  # None: not installed from Python, cannot be put back
                signal.signal(signum, previous)
