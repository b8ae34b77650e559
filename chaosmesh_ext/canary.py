"""Canary analysis: the guarded progressive rollout, a loop over two callables (no I/O).

Flagger-style: raise the canary's weight step by step; after each step wait, then run a guard
(a load run's flat result: ``error_rate``, ``p99_ms``, ``codes``) and compare it with the
limits; on the first failed guard — or a guard that cannot run — put all traffic back on
the stable subset and stop. A bad canary never gets more than the share of the step at which
it was caught. Who shifts the weights and who measures is the caller's business: the action
``chaosmesh_ext.actions.progressive_rollout`` wires the traffic action and the load probe. The
split a VirtualService declares, which ``probes.split_follows_weights`` compares with the
measured one, is ``chaosmesh_ext.istio.traffic.declared_split``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaosmesh_ext.errors import ChaosMeshError

__all__ = ["GuardLimits", "RolloutError", "check_steps", "guard_failures", "run_rollout"]

logger = logging.getLogger("chaostoolkit")

Shift = Callable[[int], object]  # sets the canary's weight (percent); the stable gets the rest
Guard = Callable[[int], Mapping[str, Any]]  # measures at a step; a flat load result


class RolloutError(ChaosMeshError, ValueError):
    """A rollout argument is wrong; nothing was changed."""


@dataclass(frozen=True, kw_only=True)
class GuardLimits:
    """What a guard's load result must stay within for the rollout to go on."""

    max_error_rate: float = 0.01
    max_p99_ms: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.max_error_rate <= 1:
            raise RolloutError(f"max_error_rate must be within [0, 1], got {self.max_error_rate!r}")


def check_steps(steps: Sequence[int | str], *, what: str) -> list[int]:
    """The canary weights, checked: increasing percentages in (0, 100]."""
    try:
        step_list = [int(s) for s in steps]
    except (TypeError, ValueError):
        step_list = []
    if (
        not step_list
        or any(not 0 < s <= 100 for s in step_list)
        or step_list != sorted(set(step_list))
    ):
        raise RolloutError(
            f"{what}: steps must be increasing percentages in (0, 100], got {list(steps)!r}"
        )
    return step_list


def guard_failures(result: Mapping[str, Any], limits: GuardLimits) -> list[str]:
    """Why a guard's result fails the limits (empty when it passes)."""
    failures = []
    error_rate = float(result.get("error_rate", 1.0))
    if error_rate > limits.max_error_rate:
        failures.append(f"error rate {error_rate:.3f} > {limits.max_error_rate}")
    p99 = result.get("p99_ms")
    if limits.max_p99_ms is not None and p99 is not None and float(p99) > limits.max_p99_ms:
        failures.append(f"p99 {float(p99):.1f} ms > {limits.max_p99_ms} ms")
    return failures


def run_rollout(
    steps: Sequence[int],
    *,
    shift: Shift,
    guard: Guard,
    limits: GuardLimits,
    stable: str,
    canary: str,
    what: str,
    interval: float = 0.0,
    sleep: Callable[[float], object] = time.sleep,
) -> dict[str, Any]:
    """Shift to each step, wait ``interval`` seconds, guard; back to ``stable`` on a failure.

    Returns ``promoted`` (bool), ``max_canary_weight``, ``halted_at`` (the failing step or
    None), ``rolled_back_to`` (``stable`` or None) and each step's numbers. A guard that
    raises (even on SIGTERM) sends all traffic back to stable before the error travels on.
    ``what`` names the object in log lines (``VirtualService default/shop``).
    """
    if interval < 0:
        raise RolloutError(f"interval must be >= 0 seconds, got {interval!r}")
    history: list[dict[str, Any]] = []
    max_weight = 0
    for step in steps:
        shift(step)
        max_weight = step
        try:
            sleep(interval)
            result = guard(step)
        except BaseException as exc:
            # A guard that cannot measure has not passed: the canary must not keep its share.
            logger.warning(
                f"progressive_rollout {what}: guard at {step}% could not run ({exc});"
                f" all traffic back to {stable}"
            )
            shift(0)
            raise
        failures = guard_failures(result, limits)
        history.append(
            {
                "canary_weight": step,
                "error_rate": result.get("error_rate"),
                "p99_ms": result.get("p99_ms"),
                "codes": result.get("codes"),
                "passed": not failures,
                "failures": failures,
            }
        )
        if failures:
            logger.warning(
                f"progressive_rollout {what}: guard failed at {step}% ({'; '.join(failures)});"
                f" all traffic back to {stable}"
            )
            shift(0)
            return {
                "promoted": False,
                "halted_at": step,
                "max_canary_weight": max_weight,
                "rolled_back_to": stable,
                "steps": history,
            }
        logger.info(f"progressive_rollout {what}: {step}% to {canary} passed")
    return {
        "promoted": max_weight == 100,
        "halted_at": None,
        "max_canary_weight": max_weight,
        "rolled_back_to": None,
        "steps": history,
    }
