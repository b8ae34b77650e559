"""Chaos Toolkit's interruptions, which broad error handlers must let through.

On SIGTERM (or a tripped safeguard) chaoslib raises ``InterruptExecution`` from its signal
handler into whatever code runs at that moment — often a network call inside one of our
activities. Code that turns ``Exception`` into a friendly ``ActivityFailed`` must re-raise
it first (``except INTERRUPTS: raise``), or the run carries on as if nothing happened.
"""

from __future__ import annotations

try:
    from chaoslib.exceptions import InterruptExecution
except ImportError:  # the embedded mesh's processes run without chaoslib

    class InterruptExecution(Exception):  # type: ignore[no-redef]
        """Stand-in so the tuple below exists without chaoslib."""


INTERRUPTS: tuple[type[BaseException], ...] = (InterruptExecution,)
