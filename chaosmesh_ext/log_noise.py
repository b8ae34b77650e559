"""Chaos Toolkit log lines that read as alarms for what an experiment asked for.

chaoslib logs ``Rollbacks were explicitly requested to be played`` as a WARNING whenever an
experiment declares ``"runtime": {"rollbacks": {"strategy": "always"}}`` — this project's
experiments do, so every run "warned". The safety-net control installs :func:`quiet` on the
``chaostoolkit`` logger, which reports such lines at INFO instead; nothing is dropped.
"""

from __future__ import annotations

import logging

__all__ = ["quiet"]

# Messages chaoslib logs as warnings for a choice the experiment made on purpose.
EXPECTED = ("Rollbacks were explicitly requested to be played",)


class _AsInfo(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and record.getMessage() in EXPECTED:
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def quiet(logger: logging.Logger | None = None) -> None:
    """Report the expected warnings of ``logger`` (``chaostoolkit``) at INFO; idempotent."""
    target = logger or logging.getLogger("chaostoolkit")
    if not any(isinstance(f, _AsInfo) for f in target.filters):
        target.addFilter(_AsInfo())
